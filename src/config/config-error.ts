/** A setting the service cannot start with; the message names the variable at fault. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** The environment as read: variable name to value. */
export type Env = Readonly<Record<string, string | undefined>>;
