// Small helpers shared by the tests that call the REST routes with fetch:
// reading an answer, checking the Stytch error shape, fresh addresses, and
// waiting for mail to one address at the test SMTP server.
import { expect } from "vitest";
import { checkRestAnswer } from "./openapi.js";
import type { ReceivedMail, TestSmtp } from "./smtp.js";

const STYTCH_ERROR_KEYS = ["error_message", "error_type", "error_url", "request_id", "status_code"];
export const REQUEST_ID = /^request-id-test-[0-9a-f-]{36}$/;
export const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Addresses unique to this run: `<tag>-<n>-<run>@example.com`. */
export function emailFactory(): (tag: string) => string {
  let counter = 0;
  const run = Date.now().toString(36);
  return (tag) => `${tag}-${++counter}-${run}@example.com`;
}

/**
 * A JSON answer of a shape the test knows: `any` keeps the assertions
 * readable, and the assertions themselves check the shape.
 */
// biome-ignore lint/suspicious/noExplicitAny: parsed JSON whose shape the assertions check
export type Json = any;

export interface Answer {
  readonly status: number;
  readonly text: string;
  readonly body: Json;
}

export async function answer(res: Response): Promise<Answer> {
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  // Every REST answer is also checked against the OpenAPI document.
  if (res.url) checkRestAnswer(res.url, res.status, body, text);
  return { status: res.status, text, body };
}

export function expectStytchError(a: Answer, status: number, errorType: string): void {
  expect(a.status, a.text).toBe(status);
  expect(Object.keys(a.body).sort()).toEqual(STYTCH_ERROR_KEYS);
  expect(a.body.status_code).toBe(status);
  expect(a.body.error_type).toBe(errorType);
  expect(a.body.request_id).toMatch(REQUEST_ID);
  expect(typeof a.body.error_message).toBe("string");
  expect(a.body.error_message.length).toBeGreaterThan(0);
  expect(a.body.error_url).toBe(`https://stytch.com/docs/api/errors/${status}#${errorType}`);
}

/** Mail to one address, and a wait for the count-th of it (returned). */
export function mailbox(smtp: () => TestSmtp) {
  const mailsTo = (address: string) => smtp().mails.filter((m) => m.to === address);
  const waitForMailTo = async (address: string, count: number, timeoutMs = 10_000): Promise<ReceivedMail> => {
    const deadline = Date.now() + timeoutMs;
    while (mailsTo(address).length < count) {
      if (Date.now() > deadline) throw new Error(`expected ${count} mails to ${address}, got ${mailsTo(address).length}`);
      await sleep(20);
    }
    return mailsTo(address)[count - 1]!;
  };
  return { mailsTo, waitForMailTo };
}
