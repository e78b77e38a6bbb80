// Domain records as the proto messages callers see.
import { create, type JsonObject } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  AuthenticationFactorSchema,
  EmailFactorSchema,
  SessionSchema,
  UserSchema,
  type Session,
  type User,
} from "../../../gen/otp/v1/otp_service_pb.js";
import type { SessionRecord, UserRecord } from "../../domain/sign-in-records.js";

export function userMessage(u: UserRecord): User {
  return create(UserSchema, {
    userId: u.userId,
    status: u.status,
    createdAt: timestampFromMs(u.createdAt),
    emails: u.emails.map((e) => ({ emailId: e.emailId, email: e.email, verified: e.verified })),
  });
}

export function sessionMessage(s: SessionRecord): Session {
  return create(SessionSchema, {
    sessionId: s.id,
    userId: s.userId,
    startedAt: timestampFromMs(s.startedAt),
    lastAccessedAt: timestampFromMs(s.lastAccessedAt),
    expiresAt: timestampFromMs(s.expiresAt),
    attributes: { ipAddress: s.ipAddress ?? "", userAgent: s.userAgent ?? "" },
    authenticationFactors: s.factors.map((f) =>
      create(AuthenticationFactorSchema, {
        type: f.type,
        deliveryMethod: f.delivery_method,
        lastAuthenticatedAt: timestampFromMs(Date.parse(f.last_authenticated_at)),
        emailFactor: create(EmailFactorSchema, { emailId: f.email_factor.email_id, emailAddress: f.email_factor.email_address }),
      }),
    ),
    customClaims: s.customClaims as JsonObject,
  });
}
