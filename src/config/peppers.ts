// Older peppers kept for codes issued before a rotation.
import type { Pepper } from "../domain/secrets.js";
import { ConfigError } from "./config-error.js";

export function parsePreviousPeppers(raw: string | undefined, currentId: number): Pepper[] {
  if (raw === undefined) return [];
  const seen = new Set<number>();
  return raw.split(",").map((entry) => {
    const m = /^(\d+):(.{32,})$/.exec(entry.trim());
    if (!m) throw new ConfigError("OTP_PREVIOUS_PEPPERS must be a comma-separated list of <id>:<secret of 32+ characters>");
    const id = Number(m[1]);
    if (id < 1 || id > 32_767) throw new ConfigError(`OTP_PREVIOUS_PEPPERS: id ${id} is not between 1 and 32767`);
    if (id === currentId) throw new ConfigError(`OTP_PREVIOUS_PEPPERS reuses the current OTP_PEPPER_ID ${id}`);
    if (seen.has(id)) throw new ConfigError(`OTP_PREVIOUS_PEPPERS: id ${id} is used twice`);
    seen.add(id);
    return { id, secret: m[2]! };
  });
}
