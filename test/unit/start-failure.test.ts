// What a person reads when the service cannot start: what failed and the
// variable that fixes it, never "undefined", never a database password.
import { describe, expect, it } from "vitest";
import { DataDirInUse } from "../../src/storage/data-dir-lock.js";
import { EmbeddedPostgresError } from "../../src/storage/embedded.js";
import { databaseFailure, dataDirFailure, describeDatabaseUrl, listenFailure, messageOf, StartError, startFailureMessage } from "../../src/start-failure.js";
import { favicon } from "../../src/web/favicon.js";

const errno = (code: string, message = `some ${code}`) => Object.assign(new Error(message), { code });

describe("start failures", () => {
  it("never says undefined: a rejection with nothing gets words", () => {
    expect(startFailureMessage(undefined)).toBe("unknown error (nothing was reported)");
    expect(messageOf(new Error(""))).toBe("Error");
    expect(messageOf(new Error("outer", { cause: new Error("inner") }))).toBe("outer");
  });

  it("a busy or forbidden port names PORT", () => {
    expect(listenFailure(errno("EADDRINUSE"), "127.0.0.1", 8080).message).toBe(
      "port 8080 on 127.0.0.1 is already in use (127.0.0.1:8080, EADDRINUSE): stop what listens there, or set PORT to a free port (PORT=0 picks one)",
    );
    expect(listenFailure(errno("EACCES"), "0.0.0.0", 80).message).toBe("not allowed to listen on 0.0.0.0:80 (EACCES): set PORT to 1024 or above");
    expect(listenFailure(errno("EADDRNOTAVAIL"), "10.9.9.9", 8080).message).toContain("set HOST");
  });

  it("database failures name DATABASE_URL with its host and database, never the password", () => {
    const config = { databaseUrl: "postgres://otp:s3cret-pw@db.internal:6432/otp", dataDir: "/x" };
    expect(describeDatabaseUrl(config.databaseUrl)).toBe("db.internal:6432/otp");
    const refused = databaseFailure(errno("ECONNREFUSED"), config);
    expect(refused).toBeInstanceOf(StartError);
    expect(refused.message).toBe(
      "cannot reach the database at DATABASE_URL (db.internal:6432/otp): ECONNREFUSED; check that Postgres runs there and that DATABASE_URL is right, or unset DATABASE_URL to run an embedded Postgres",
    );
    expect(databaseFailure(errno("28P01", 'password authentication failed for user "otp"'), config).message).toBe(
      'the database at DATABASE_URL (db.internal:6432/otp) refused the service: the password in DATABASE_URL is wrong (28P01: password authentication failed for user "otp")',
    );
    expect(databaseFailure(new Error("timeout exceeded when trying to connect"), config).message).toContain("no answer within the connection timeout");
    expect(databaseFailure(errno("42P07", 'relation "x" already exists'), config).message).toBe(
      'the database at DATABASE_URL (db.internal:6432/otp) failed while applying migrations: relation "x" already exists (42P07)',
    );
    for (const e of [refused, databaseFailure(errno("28P01"), config)]) expect(e.message).not.toContain("s3cret");
  });

  it("DATA_DIR problems name DATA_DIR; the lock and the embedded Postgres speak for themselves", () => {
    expect((dataDirFailure(Object.assign(errno("EACCES"), { path: "/srv/data/pepper" }), "/srv/data") as Error).message).toBe(
      "DATA_DIR /srv/data cannot be used (EACCES on /srv/data/pepper): set DATA_DIR to a directory this user can write, or fix its permissions",
    );
    const inUse = dataDirFailure(new DataDirInUse("/srv/data", 4242), "/srv/data") as Error;
    expect(inUse).toBeInstanceOf(StartError);
    expect(inUse.message).toBe("DATA_DIR /srv/data is in use by another otp-service (pid 4242): stop that one (kill 4242), or give this one its own directory with DATA_DIR=…");
    expect((dataDirFailure(new EmbeddedPostgresError("EMBEDDED_PG_PORT 5 is already in use"), "/d") as Error).message).toBe("EMBEDDED_PG_PORT 5 is already in use");
    const other = new TypeError("a bug");
    expect(dataDirFailure(other, "/d")).toBe(other);
  });
});

it("/favicon.ico is a one-image 32×32 32-bit ICO", () => {
  const ico = favicon();
  expect([ico.readUInt16LE(0), ico.readUInt16LE(2), ico.readUInt16LE(4)]).toEqual([0, 1, 1]);
  expect([ico[6], ico[7], ico.readUInt16LE(12)]).toEqual([32, 32, 32]);
  expect(ico.readUInt32LE(14) + ico.readUInt32LE(18)).toBe(ico.length);
});
