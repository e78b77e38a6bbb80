// The service's JSON log.
import { pino, type DestinationStream, type Logger } from "pino";

/** The service's JSON log: ISO timestamps, and what must never be written redacted. */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  // Postgres error details can quote row values (an address in a unique
  // violation): they never reach the log.
  const options = {
    level,
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: ["*.secret", "*.authorization", "*.password", "*.token", "err.detail", "err.cause.detail", "err.where"],
  };
  return destination ? pino(options, destination) : pino(options);
}
