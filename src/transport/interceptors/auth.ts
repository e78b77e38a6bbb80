// Who may call what, on every protocol (the authorization header or gRPC
// metadata): HTTP Basic project_id:secret on RPCs whose contract is
// Stytch's, the bearer ADMIN_TOKEN on the admin API, nothing on public ones.
import type { Interceptor } from "@connectrpc/connect";
import { DomainError } from "../../domain/errors.js";
import type { ProjectAuthenticator } from "../../domain/project-auth.js";
import { bearerCheck } from "../bearer.js";
import { callInfoKey, tenantKey } from "../context.js";
import { ApiContract, contractOf } from "../contract.js";
import { TransportError } from "../transport-error.js";

function parseBasicAuth(header: string | null): { user: string; password: string } | undefined {
  const m = header === null ? null : /^Basic[ ]+([A-Za-z0-9+/]+=*)[ ]*$/i.exec(header);
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon <= 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

export function authInterceptor(projects: ProjectAuthenticator, adminToken: string | undefined): Interceptor {
  const adminTokenMatches = adminToken === undefined ? undefined : bearerCheck(adminToken);
  return (next) => async (req) => {
    switch (contractOf(req.method)) {
      case ApiContract.STYTCH: {
        const credentials = parseBasicAuth(req.header.get("authorization"));
        if (!credentials) {
          throw new DomainError(
            "unauthenticated",
            "Missing or malformed Authorization header: use HTTP Basic auth with your project_id and secret.",
          );
        }
        const client = req.contextValues.get(callInfoKey).clientIp;
        req.contextValues.set(tenantKey, await projects.authenticate(credentials.user, credentials.password, client));
        break;
      }
      case ApiContract.ADMIN: {
        if (adminTokenMatches === undefined) throw new TransportError("admin_disabled", "The admin API is off: set ADMIN_TOKEN to turn it on.");
        if (!adminTokenMatches(req.header.get("authorization") ?? undefined)) {
          throw new DomainError("unauthenticated", "Missing or wrong admin token: send Authorization: Bearer <ADMIN_TOKEN>.");
        }
        break;
      }
    }
    return next(req);
  };
}
