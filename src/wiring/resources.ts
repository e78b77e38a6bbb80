// What build() has started and must stop, in order, on close or on a failed start.
import type { DataDirLock } from "../storage/data-dir-lock.js";

export class Resources {
  /** Run first to last on close. */
  readonly cleanups: (() => Promise<unknown>)[] = [];
  /** Released after everything else has stopped, the embedded Postgres included. */
  lock: DataDirLock | undefined;
}
