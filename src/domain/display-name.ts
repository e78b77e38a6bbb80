// What a name shown as a mail's sender may hold. A display name is what most
// mail clients show instead of the address, so it must not read as something
// else: no control characters, no bidirectional controls or invisible
// characters (which can reverse or hide text), and nothing that makes it
// look like an address ("security@bank.example", "<ceo@…>"), full-width
// lookalikes included. Zero-width (non-)joiners stay: scripts and emoji
// need them.
const CONTROL = /[\p{Cc}\u2028\u2029]/u;
const BIDI_OR_INVISIBLE = /[\u061c\u200b\u200e\u200f\u202a-\u202e\u2060\u2066-\u2069\ufeff]/u;
const ADDRESS_LIKE = /[@<>"\\\uff20\ufe6b\uff1c\uff1e\ufe64\ufe65\u2039\u203a\u2329\u232a\u27e8\u27e9\u3008\u3009]/u;

/** Why `name` cannot be shown as text (control, bidi or invisible characters), or undefined. */
export function unsafeTextReason(name: string): string | undefined {
  if (CONTROL.test(name)) return "must be a single line without control characters";
  if (BIDI_OR_INVISIBLE.test(name)) return "must not contain bidirectional or invisible formatting characters";
  return undefined;
}

/** Why `name` cannot be a sender's display name, or undefined. */
export function unsafeDisplayNameReason(name: string): string | undefined {
  return unsafeTextReason(name) ?? (ADDRESS_LIKE.test(name) ? "must not contain @, <, >, quotes or backslashes (it would read like an address)" : undefined);
}
