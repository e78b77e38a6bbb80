// The sign-in page: email → SendOtp → code → ExchangeOtp, through a
// Connect-Web client generated from the service's own proto. The bearer
// token is kept in memory only.
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { BadRequestSchema, RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { OtpService } from "../../gen/otp/v1/otp_service_pb.js";

interface PageConfig {
  readonly business_id: number | null;
  readonly dev_mailbox: boolean;
}

const client = createClient(OtpService, createConnectTransport({ baseUrl: location.origin }));

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const sendForm = $<HTMLFormElement>("send-form");
const codeForm = $<HTMLFormElement>("code-form");
const email = $<HTMLInputElement>("email");
const business = $<HTMLInputElement>("business");
const code = $<HTMLInputElement>("code");
const status = $("status");
const error = $("error");
let token: string | undefined;

function say(message: string): void {
  status.textContent = message;
  error.textContent = "";
}

function fail(message: string, field?: HTMLInputElement): void {
  status.textContent = "";
  error.textContent = message;
  for (const input of [email, business, code]) input.removeAttribute("aria-invalid");
  if (field) {
    field.setAttribute("aria-invalid", "true");
    field.focus();
  }
}

/** Turns a Connect error into words for people, pointing at the field at fault. */
function explain(err: unknown): void {
  const e = ConnectError.from(err);
  const fields = e.findDetails(BadRequestSchema).flatMap((b) => b.fieldViolations.map((v) => v.field));
  fail(...words(e, fields));
}

/** The sentence for a failed call, and the field it points at (if any). */
function words(e: ConnectError, fields: string[]): [string, HTMLInputElement?] {
  switch (e.code) {
    case Code.InvalidArgument:
      if (fields.includes("otp")) return ["That code is wrong, expired or already used. Check the email or ask for a new code.", code];
      if (fields.includes("business_id")) return ["Enter the number of a business you belong to.", business];
      if (fields.includes("email")) return ["Enter a valid email address.", email];
      return ["Please check what you entered."];
    case Code.ResourceExhausted: {
      const retry = e.findDetails(RetryInfoSchema)[0]?.retryDelay;
      const seconds = retry ? Number(retry.seconds) : Number(e.metadata.get("retry-after") ?? 0);
      return [seconds > 0 ? `Too many attempts. Try again in ${seconds} seconds.` : "Too many attempts. Try again in a little while."];
    }
    case Code.Unavailable:
      return ["The service is unavailable right now. Try again shortly."];
    default:
      return ["Something went wrong. Please try again."];
  }
}

async function busy<T>(button: HTMLButtonElement, work: () => Promise<T>): Promise<T | undefined> {
  button.disabled = true;
  try {
    return await work();
  } catch (err) {
    explain(err);
    return undefined;
  } finally {
    button.disabled = false;
  }
}

function businessId(): bigint | undefined {
  return /^\d{1,15}$/.test(business.value.trim()) ? BigInt(business.value.trim()) : undefined;
}

sendForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const id = businessId();
  if (!email.value.trim()) return fail("Enter your email address.", email);
  if (id === undefined) return fail("Enter the number of a business you belong to.", business);
  const sent = await busy($("send"), () => client.sendOtp({ email: email.value.trim(), businessId: id }));
  if (!sent) return;
  sendForm.hidden = true;
  codeForm.hidden = false;
  code.value = "";
  code.focus();
  // The dev mailbox link opens on this address's mail only.
  $("dev-mailbox").querySelector("a")?.setAttribute("href", `/dev/mailbox?to=${encodeURIComponent(email.value.trim())}`);
  say(`If ${email.value.trim()} has an account, a code is on its way.`);
});

codeForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const id = businessId();
  if (!/^\d{6}$/.test(code.value.trim())) return fail("Enter the 6-digit code from the email.", code);
  const result = await busy($("verify"), () =>
    client.exchangeOtp({ email: email.value.trim(), businessId: id ?? 0n, otp: code.value.trim() }),
  );
  if (!result?.value) return;
  token = result.value;
  codeForm.hidden = true;
  $("lead").hidden = true;
  $("signed-in").hidden = false;
  $("who").textContent = `${email.value.trim()}, business ${id}`;
  $("token").textContent = token;
  say("Signed in.");
  $("signed-in-title").focus();
});

$("restart").addEventListener("click", () => {
  codeForm.hidden = true;
  sendForm.hidden = false;
  say("");
  email.focus();
});

$("sign-out").addEventListener("click", () => {
  token = undefined;
  $("signed-in").hidden = true;
  $("lead").hidden = false;
  sendForm.hidden = false;
  say("Signed out.");
  email.focus();
});

void fetch("/signin/config.json")
  .then((r) => r.json() as Promise<PageConfig>)
  .then((config) => {
    if (config.business_id !== null && !business.value) business.value = String(config.business_id);
    $("dev-mailbox").hidden = !config.dev_mailbox;
  })
  .catch(() => {});
$("signed-in-title").tabIndex = -1;
