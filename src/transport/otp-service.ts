// The OtpService, SessionService and AdminService as Connect sees them: the RPC implementations and the
// interceptors every protocol runs them through, in order (errors outermost,
// then authentication, then shape rules). build() serves them on the port;
// tests may serve them through Connect's in-memory router transport.
import type { Interceptor } from "@connectrpc/connect";
import type { Logger } from "pino";
import type { ProjectAuthenticator } from "../domain/project-auth.js";
import type { HandlerDeps } from "./handlers/deps.js";
import { addUser } from "./handlers/admin/add-user.js";
import { createProject } from "./handlers/admin/create-project.js";
import { deleteTemplate } from "./handlers/admin/delete-template.js";
import type { AdminDeps } from "./handlers/admin/deps.js";
import { getDeliveryStatus } from "./handlers/admin/get-delivery-status.js";
import { listAuditEvents } from "./handlers/admin/list-audit-events.js";
import { listBusinesses } from "./handlers/admin/list-businesses.js";
import { listProjects } from "./handlers/admin/list-projects.js";
import { listTemplates } from "./handlers/admin/list-templates.js";
import { listUsers } from "./handlers/admin/list-users.js";
import { removeUser } from "./handlers/admin/remove-user.js";
import { rotateProjectSecret } from "./handlers/admin/rotate-project-secret.js";
import { rotateSigningKeys } from "./handlers/admin/rotate-signing-keys.js";
import { setTemplate } from "./handlers/admin/set-template.js";
import { updateProject } from "./handlers/admin/update-project.js";
import { upsertBusiness } from "./handlers/admin/upsert-business.js";
import { authenticateOtp } from "./handlers/authenticate-otp.js";
import { authenticateSession } from "./handlers/authenticate-session.js";
import { exchangeOtp } from "./handlers/exchange-otp.js";
import { getBusinessJwks } from "./handlers/get-business-jwks.js";
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
    getBusinessJwks: getBusinessJwks(deps),
  };
}

export function sessionServiceImpl(deps: HandlerDeps) {
  return {
    authenticateSession: authenticateSession(deps),
    revokeSession: revokeSession(deps),
    getJwks: getJwks(deps),
  };
}

export function adminServiceImpl(deps: AdminDeps) {
  return {
    createProject: createProject(deps),
    listProjects: listProjects(deps),
    updateProject: updateProject(deps),
    rotateProjectSecret: rotateProjectSecret(deps),
    rotateSigningKeys: rotateSigningKeys(deps),
    upsertBusiness: upsertBusiness(deps),
    listBusinesses: listBusinesses(deps),
    setTemplate: setTemplate(deps),
    listTemplates: listTemplates(deps),
    deleteTemplate: deleteTemplate(deps),
    addUser: addUser(deps),
    listUsers: listUsers(deps),
    removeUser: removeUser(deps),
    listAuditEvents: listAuditEvents(deps),
    getDeliveryStatus: getDeliveryStatus(deps),
  };
}

export function otpInterceptors(logger: Logger, projects: ProjectAuthenticator, adminToken?: string): Interceptor[] {
  return [errorInterceptor(logger), authInterceptor(projects, adminToken), validationInterceptor()];
}
