// A mail as the development mailbox keeps it: written by the mail adapter,
// shown by the transport's inbox page. It lives in the domain because both
// sides need the one shape and neither may import the other.
export interface DevMail {
  readonly id: string;
  readonly to: string;
  readonly subject: string;
  readonly text: string;
  readonly html: string;
  readonly created_at: string;
}

/** A dev mailbox entry with its code, for the inbox page's copy button (the JSON answer leaves it out). */
export interface DevMailWithCode extends DevMail {
  readonly code: string;
}
