import type { BusinessDirectory } from "../../domain/business-directory.js";
import type { OtpSender } from "../../domain/otp-sender.js";
import type { SignIn } from "../../domain/sign-in.js";
import type { TenantKeys } from "../../domain/signing-keys.js";
import type { TemplateDirectory } from "../../domain/template-directory.js";

/** What the RPC handlers call into: the domain, nothing else. */
export interface HandlerDeps {
  readonly sender: OtpSender;
  readonly businesses: BusinessDirectory;
  readonly signIn: SignIn;
  /** Each tenant's signing keys, for its JWKS. */
  readonly keys: TenantKeys;
  readonly templates: TemplateDirectory;
}
