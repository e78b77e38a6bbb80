// Which spellings of an address are one mailbox to the send limits.
import { describe, expect, it } from "vitest";
import { mailboxOf } from "../../src/domain/mailbox.js";

describe("mailboxOf", () => {
  it("drops a +subaddress, whatever the domain", () => {
    expect(mailboxOf("jane+promo@example.com")).toBe("jane@example.com");
    expect(mailboxOf("jane+a+b@example.com")).toBe("jane@example.com");
    expect(mailboxOf("jane@example.com")).toBe("jane@example.com");
  });

  it("ignores case", () => {
    expect(mailboxOf("Jane+X@Example.COM")).toBe("jane@example.com");
  });

  it("ignores dots in a Gmail name and treats googlemail.com as gmail.com", () => {
    expect(mailboxOf("j.a.n.e+x@googlemail.com")).toBe("jane@gmail.com");
    expect(mailboxOf("jane@gmail.com")).toBe("jane@gmail.com");
  });

  it("keeps dots elsewhere: other providers deliver j.ane and jane to different people", () => {
    expect(mailboxOf("j.ane@example.com")).toBe("j.ane@example.com");
  });

  it("keeps a name that is only a subaddress, and anything without an @, as it is", () => {
    expect(mailboxOf("+tag@example.com")).toBe("+tag@example.com");
    expect(mailboxOf("not-an-address")).toBe("not-an-address");
  });
});
