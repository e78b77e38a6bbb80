// An address a user has added but not yet proven (pending, for five
// minutes) is not theirs yet. Its owner signing in by it within those
// minutes must get an account of their own, never the user who added it
// (else anyone could add a stranger's address to their own account and
// wait for the stranger to sign in to it: account pre-hijacking).
import { describe, expect, it } from "vitest";
import { expectStytchError } from "../support/answers.js";
import { authenticate, env, freshEmail, mailsTo, post, sendCode, useSignInEnv, waitForMailTo } from "../support/sign-in.js";
import { codeIn } from "../support/smtp.js";

useSignInEnv();

/** A signed-in user, who then has `address` added to their account (pending until proven). */
async function userWhoAdded(address: string): Promise<string> {
  const own = await sendCode(freshEmail("adder"));
  const signedIn = await authenticate({ method_id: own.emailId, code: own.code });
  expect(signedIn.status, signedIn.text).toBe(200);
  const before = mailsTo(address).length;
  const added = await post("/v1/otps/email/send", { email: address, user_id: own.userId });
  expect(added.status, added.text).toBe(200);
  expect(added.body.user_id).toBe(own.userId);
  await waitForMailTo(address, before + 1);
  return own.userId;
}

async function ownerOf(address: string): Promise<{ user_id: string; pending_until: Date | null }> {
  const { rows } = await env().app.db.query("SELECT user_id, pending_until FROM emails WHERE address = $1", [address]);
  return rows[0];
}

describe("an address another user added and has not proven", () => {
  it("login_or_create by it makes a user of its own: the code signs its owner in there, not into the adder's account", async () => {
    const victim = freshEmail("pending-victim");
    const adder = await userWhoAdded(victim);

    const before = mailsTo(victim).length;
    const sent = await post("/v1/otps/email/login_or_create", { email: victim });
    expect(sent.status, sent.text).toBe(200);
    expect(sent.body.user_id).not.toBe(adder);
    expect(sent.body.user_created).toBe(true);
    const code = codeIn(await waitForMailTo(victim, before + 1));

    const signedIn = await authenticate({ method_id: sent.body.email_id, code, session_duration_minutes: 60 });
    expect(signedIn.status, signedIn.text).toBe(200);
    expect(signedIn.body.user_id).toBe(sent.body.user_id);
    expect(signedIn.body.user_id).not.toBe(adder);
    // The address is now its owner's, proven; the adder's claim is gone.
    expect(await ownerOf(victim)).toEqual({ user_id: sent.body.user_id, pending_until: null });
  });

  it("the code mailed for the adder's claim no longer signs anyone in once the owner has signed up", async () => {
    const victim = freshEmail("pending-claim-code");
    const adder = await userWhoAdded(victim);
    const claimCode = codeIn(mailsTo(victim).at(-1)!);
    const sent = await post("/v1/otps/email/login_or_create", { email: victim });
    expect(sent.status, sent.text).toBe(200);
    expectStytchError(await authenticate({ method_id: sent.body.email_id, code: claimCode }), 401, "unable_to_auth_otp_code");
    expect((await ownerOf(victim)).user_id).not.toBe(adder);
  });

  it("send (no user created) by it answers as for an unknown address, and mails nothing", async () => {
    const victim = freshEmail("pending-send");
    await userWhoAdded(victim);
    const before = mailsTo(victim).length;
    expectStytchError(await post("/v1/otps/email/send", { email: victim }), 404, "email_not_found");
    await new Promise((r) => setTimeout(r, 300));
    expect(mailsTo(victim)).toHaveLength(before);
  });

  it("the adder can still prove it: a send for the same user goes on as before", async () => {
    const address = freshEmail("pending-own");
    const adder = await userWhoAdded(address);
    const again = await post("/v1/otps/email/send", { email: address, user_id: adder });
    expect(again.status, again.text).toBe(200);
    expect(again.body.user_id).toBe(adder);
  });
});
