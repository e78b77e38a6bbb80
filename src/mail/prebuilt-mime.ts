// MIME built once per template. Every passcode mail of a tenant, locale and
// template is the same message but for its code, its recipient, its
// Message-ID and its date. nodemailer's composer (header encoding,
// quoted-printable, multipart assembly) is most of the CPU a delivery costs,
// so it runs once per distinct message, with stand-ins for those four, and
// each mail is the prebuilt bytes with the stand-ins replaced.
//
// The stand-ins are encoded exactly as what replaces them: the code stand-in
// has the code's length and, like digits, is left as is by quoted-printable
// and by RFC 2047 Q-encoding, so line breaks fall where they would for the
// code. A message where a stand-in did not come out whole (a soft line break
// inside it, say) or a recipient that nodemailer would encode is not
// prebuilt: it goes through the composer as before.
import MailComposer from "nodemailer/lib/mail-composer/index.js";
import type Mail from "nodemailer/lib/mailer/index.js";

const CODE_STAND_IN = "QJXZKV";
const TO_STAND_IN = "qjxzkv-to@stand-in.invalid";
const ID_STAND_IN = "<qjxzkv-id@stand-in.invalid>";
/** Addresses nodemailer writes as they are (no name, no encoding, no folding). */
const PLAIN_ADDRESS = /^[A-Za-z0-9._%+'-]{1,64}@[A-Za-z0-9.-]{1,190}$/;
const CACHE_SIZE = 256;

/** A literal piece (its bytes), or where a per-mail value goes. */
type Part = Buffer | Slot;
const Slot = { Code: 0, To: 1, Id: 2, Date: 3 } as const;
type Slot = (typeof Slot)[keyof typeof Slot];
const SPLIT = new RegExp(`(${CODE_STAND_IN}|^To: .*$|^Message-ID: .*$|^Date: .*$)`, "gm");

/** The mail to build: nodemailer's options, with the code it carries. */
export interface ComposableMail {
  readonly options: Mail.Options & { subject: string; text: string; html: string; to: string; messageId: string };
  readonly code: string;
}

/**
 * A prebuilt message: literal pieces, already bytes, and the places the
 * per-mail values go. Each mail is then one buffer of known length filled in
 * order: no string is built and encoded per mail (the message is the largest
 * thing a delivery allocates).
 */
interface Prebuilt {
  readonly parts: readonly Part[];
  /** The literal pieces' bytes in all. */
  readonly literalBytes: number;
}

/** A prebuilt message (null: one that cannot be), with the texts it was built from, split where the code goes. */
interface Entry {
  /** Subject, text and HTML, each split at the code's places. */
  readonly pieces: readonly (readonly string[])[];
  readonly prebuilt: Prebuilt | null;
}

/** Entries kept under one key (same sender, headers and text lengths): tenants' texts that differ only in equal-length names. */
const ENTRIES_PER_KEY = 4;

export class PrebuiltMime {
  /**
   * Keyed by what is small (sender, reply-to, headers, and the three texts'
   * lengths); a mail's texts are then compared with each entry's pieces and
   * its code in place, without building a string. A key made of the texts
   * themselves was the largest allocation of a delivery.
   */
  private readonly cache = new Map<string, Entry[]>();

  /**
   * The message's bytes from its template's prebuilt message, or undefined
   * when this mail cannot be prebuilt (the caller composes it as usual).
   */
  async render(mail: ComposableMail, now: Date): Promise<Buffer | undefined> {
    const { options, code } = mail;
    if (code.length !== CODE_STAND_IN.length || !/^\d+$/.test(code) || !PLAIN_ADDRESS.test(options.to)) return undefined;
    const texts = [options.subject, options.text, options.html] as const;
    const key = JSON.stringify([options.from, options.replyTo, options.headers, texts[0].length, texts[1].length, texts[2].length]);
    let entry = this.cache.get(key)?.find((e) => e.pieces.every((pieces, i) => isJoinedBy(texts[i]!, pieces, code)));
    if (entry === undefined) {
      entry = await this.build(mail, texts);
      this.keep(key, entry);
    }
    const prebuilt = entry.prebuilt;
    if (prebuilt === null) return undefined;
    const date = now.toUTCString().replace(/GMT/, "+0000");
    // Every value is ASCII (digits, a plain address, our Message-ID, a date)
    // or, at worst, written as latin1 like the pieces: one byte per character.
    const values = [code, `To: ${options.to}`, `Message-ID: ${options.messageId}`, `Date: ${date}`];
    let bytes = prebuilt.literalBytes;
    for (const part of prebuilt.parts) if (typeof part === "number") bytes += values[part]!.length;
    // A buffer of its own, not a slice of Node's pool: it is handed to the SMTP thread whole.
    const out = Buffer.allocUnsafeSlow(bytes);
    let at = 0;
    for (const part of prebuilt.parts) at += typeof part === "number" ? out.write(values[part]!, at, "latin1") : part.copy(out, at);
    return out;
  }

  /** Builds the message of a mail whose texts match no entry: every place of its code becomes a slot. */
  private async build(mail: ComposableMail, texts: readonly string[]): Promise<Entry> {
    // A text holding the stand-in itself would get the code there too.
    if (texts.some((t) => t.includes(CODE_STAND_IN))) return { pieces: texts.map((t) => [t]), prebuilt: null };
    const [subject, text, html] = texts.map((t) => t.replaceAll(mail.code, CODE_STAND_IN)) as [string, string, string];
    const prebuilt = await prebuild({ ...mail.options, subject, text, html }, [subject, text, html]);
    return { pieces: [subject, text, html].map((t) => t.split(CODE_STAND_IN)), prebuilt };
  }

  /** Only on a miss, so the entries are counted then rather than kept in step. */
  private keep(key: string, entry: Entry): void {
    let entries = 0;
    for (const list of this.cache.values()) entries += list.length;
    // The oldest key goes, with its entries.
    if (entries >= CACHE_SIZE) this.cache.delete(this.cache.keys().next().value!);
    const list = this.cache.get(key) ?? [];
    if (list.length >= ENTRIES_PER_KEY) list.shift();
    list.push(entry);
    this.cache.set(key, list);
  }
}

/** Whether `text` is `pieces` joined by `code`, compared in place. */
function isJoinedBy(text: string, pieces: readonly string[], code: string): boolean {
  let at = 0;
  for (let i = 0; i < pieces.length; i++) {
    if (i > 0) {
      if (!text.startsWith(code, at)) return false;
      at += code.length;
    }
    const piece = pieces[i]!;
    if (!text.startsWith(piece, at)) return false;
    at += piece.length;
  }
  return at === text.length;
}

async function prebuild(options: Mail.Options, sources: readonly string[]): Promise<Prebuilt | null> {
  // Texts holding a stand-in of their own cannot be told apart from it.
  if (sources.some((s) => s.includes(TO_STAND_IN) || s.includes(ID_STAND_IN))) return null;
  const expectedCodes = sources.reduce((n, s) => n + s.split(CODE_STAND_IN).length - 1, 0);
  const raw = await new Promise<Buffer>((resolve, reject) =>
    new MailComposer({ ...options, to: TO_STAND_IN, messageId: ID_STAND_IN, date: new Date(0) })
      .compile()
      .build((err, message) => (err ? reject(err) : resolve(message))),
  );
  // Everything encoded is 7-bit; latin1 keeps any other byte as it is.
  const parts = raw.toString("latin1").split(SPLIT);
  const out: Part[] = [];
  let literalBytes = 0;
  const seen = [0, 0, 0, 0];
  for (const [i, p] of parts.entries()) {
    if (i % 2 === 0) {
      const literal = Buffer.from(p, "latin1");
      literalBytes += literal.length;
      out.push(literal);
      continue;
    }
    const slot: Slot = p === CODE_STAND_IN ? Slot.Code : p.startsWith("To: ") ? Slot.To : p.startsWith("Message-ID: ") ? Slot.Id : Slot.Date;
    if (slot === Slot.To && p !== `To: ${TO_STAND_IN}`) return null;
    if (slot === Slot.Id && p !== `Message-ID: ${ID_STAND_IN}`) return null;
    seen[slot]!++;
    out.push(slot);
  }
  // Only the header block's To, Message-ID and Date lines: a body line
  // starting with "To: " would have been taken for one.
  if (seen[Slot.To] !== 1 || seen[Slot.Id] !== 1 || seen[Slot.Date] !== 1 || seen[Slot.Code] !== expectedCodes) return null;
  return { parts: out, literalBytes };
}
