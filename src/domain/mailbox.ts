// The mailbox an address delivers to, as far as the send limits can tell.
// Most providers deliver `name+anything@domain` to `name@domain` (RFC 5233
// subaddressing), and Gmail ignores dots in the name and answers for
// googlemail.com too. Keyed on the address as written, the per-address
// limits would give each spelling its own budget, and one inbox could be
// sent codes without end (victim+1@, victim+2@, …). Keyed on the mailbox,
// every spelling spends one budget. Coarser is the safe direction here: two
// spellings wrongly merged share a budget; two wrongly kept apart double it.

const GMAIL = new Set(["gmail.com", "googlemail.com"]);

/** "Jane.Doe+promo@GoogleMail.com" → "janedoe@gmail.com"; "a+b@example.com" → "a@example.com". */
export function mailboxOf(address: string): string {
  const at = address.lastIndexOf("@");
  if (at <= 0) return address;
  let local = address.slice(0, at).toLowerCase();
  let domain = address.slice(at + 1).toLowerCase();
  const plus = local.indexOf("+");
  if (plus > 0) local = local.slice(0, plus);
  if (GMAIL.has(domain)) {
    domain = "gmail.com";
    local = local.replaceAll(".", "") || local;
  }
  return `${local}@${domain}`;
}
