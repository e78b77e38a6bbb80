import type { BusinessDirectory } from "../../domain/business-directory.js";
import type { OtpSender } from "../../domain/otp-sender.js";

/** What the RPC handlers call into: the domain, nothing else. */
export interface HandlerDeps {
  readonly sender: OtpSender;
  readonly businesses: BusinessDirectory;
  readonly legacyCodeTtlMinutes: number;
}
