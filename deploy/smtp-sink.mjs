// A tiny SMTP server for deploy/check-image.sh (smtp-server, a dev
// dependency): listens on 127.0.0.1, prints its port on the first line of
// stdout, and writes each message it accepts, parsed (mailparser), to
// <dir>/<n>.json as {"to", "subject", "text"}.
//
//   node deploy/smtp-sink.mjs <dir>
import { writeFileSync } from "node:fs";
import path from "node:path";
import { simpleParser } from "mailparser";
import { SMTPServer } from "smtp-server";

const dir = process.argv[2];
if (!dir) {
  console.error("usage: node deploy/smtp-sink.mjs <dir>");
  process.exit(2);
}
let count = 0;
const server = new SMTPServer({
  authOptional: true,
  disabledCommands: ["STARTTLS", "AUTH"],
  logger: false,
  onData(stream, session, callback) {
    const chunks = [];
    stream.on("data", (c) => chunks.push(c));
    stream.on("end", async () => {
      const to = session.envelope.rcptTo.map((r) => r.address).join(",");
      const mail = await simpleParser(Buffer.concat(chunks));
      writeFileSync(path.join(dir, `${++count}.json`), JSON.stringify({ to, subject: mail.subject, text: mail.text }));
      callback();
    });
  },
});
server.listen(0, "127.0.0.1", () => console.log(server.server.address().port));
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => server.close(() => process.exit(0)));
