import type { BusinessDirectory } from "../../domain/business-directory.js";
import type { EmailOtp } from "../../domain/email-otp.js";
import type { OtpSender } from "../../domain/otp-sender.js";
import type { SignIn } from "../../domain/sign-in.js";
import type { TenantKeys } from "../../domain/signing-keys.js";

/** What the RPC handlers call into: the domain, nothing else. */
export interface HandlerDeps {
  readonly sender: OtpSender;
  /** The Stytch email sends. */
  readonly emailOtp: EmailOtp;
  readonly businesses: BusinessDirectory;
  readonly signIn: SignIn;
  /** Each tenant's signing keys, for its JWKS. */
  readonly keys: TenantKeys;
}
