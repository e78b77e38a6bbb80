// HTTP Basic project_id:secret on every RPC whose contract is Stytch's, on
// every protocol (the authorization header or gRPC metadata).
import type { Interceptor } from "@connectrpc/connect";
import { DomainError } from "../../domain/errors.js";
import type { ProjectAuthenticator } from "../../domain/project-auth.js";
import { tenantKey } from "../context.js";
import { ApiContract, contractOf } from "../contract.js";

export function parseBasicAuth(header: string | null): { user: string; password: string } | undefined {
  const m = header === null ? null : /^Basic[ ]+([A-Za-z0-9+/]+=*)[ ]*$/i.exec(header);
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon <= 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

export function authInterceptor(projects: ProjectAuthenticator): Interceptor {
  return (next) => async (req) => {
    if (contractOf(req.method) === ApiContract.STYTCH) {
      const credentials = parseBasicAuth(req.header.get("authorization"));
      if (!credentials) {
        throw new DomainError(
          "unauthenticated",
          "Missing or malformed Authorization header: use HTTP Basic auth with your project_id and secret.",
        );
      }
      req.contextValues.set(tenantKey, await projects.authenticate(credentials.user, credentials.password));
    }
    return next(req);
  };
}
