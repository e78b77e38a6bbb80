// The OtpService and SessionService as Connect sees them: the RPC implementations and the
// interceptors every protocol runs them through, in order (errors outermost,
// then authentication, then shape rules). build() serves them on the port;
// tests may serve them through Connect's in-memory router transport.
import type { Interceptor } from "@connectrpc/connect";
import type { Logger } from "pino";
import type { ProjectAuthenticator } from "../domain/project-auth.js";
import type { HandlerDeps } from "./handlers/deps.js";
import { authenticateOtp } from "./handlers/authenticate-otp.js";
import { authenticateSession } from "./handlers/authenticate-session.js";
import { exchangeOtp } from "./handlers/exchange-otp.js";
import { getJwks } from "./handlers/get-jwks.js";
import { loginOrCreateEmailOtp } from "./handlers/login-or-create-email-otp.js";
import { revokeSession } from "./handlers/revoke-session.js";
import { sendEmailOtp } from "./handlers/send-email-otp.js";
import { sendOtp } from "./handlers/send-otp.js";
import { authInterceptor } from "./interceptors/auth.js";
import { errorInterceptor } from "./interceptors/errors.js";
import { validationInterceptor } from "./interceptors/validate.js";

export function otpServiceImpl(deps: HandlerDeps) {
  return {
    sendEmailOtp: sendEmailOtp(deps),
    loginOrCreateEmailOtp: loginOrCreateEmailOtp(deps),
    sendOtp: sendOtp(deps),
    authenticateOtp: authenticateOtp(deps),
    exchangeOtp: exchangeOtp(deps),
  };
}

export function sessionServiceImpl(deps: HandlerDeps) {
  return {
    authenticateSession: authenticateSession(deps),
    revokeSession: revokeSession(deps),
    getJwks: getJwks(deps),
  };
}

export function otpInterceptors(logger: Logger, projects: ProjectAuthenticator): Interceptor[] {
  return [errorInterceptor(logger), authInterceptor(projects), validationInterceptor()];
}
