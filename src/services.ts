// The three services' implementations wired to the domain and to Postgres:
// what build() serves on its port, and what in-process RPC tests serve
// through Connect's router transport.
import type { DescService } from "@bufbuild/protobuf";
import { type ConnectRouter, createServiceImplSpec, type Interceptor, type ServiceImpl, type ServiceImplSpec } from "@connectrpc/connect";
import type { Logger } from "pino";
import { AdminService } from "../gen/otp/v1/admin_service_pb.js";
import { OtpService, SessionService } from "../gen/otp/v1/otp_service_pb.js";
import type { Config } from "./config.js";
import { Admin } from "./domain/admin.js";
import { BusinessDirectory } from "./domain/business-directory.js";
import { LookupBudget } from "./domain/lookup-budget.js";
import { ProjectDirectory } from "./domain/project-directory.js";
import { EmailOtp } from "./domain/email-otp.js";
import { systemClock } from "./domain/clock.js";
import { OtpSender } from "./domain/otp-sender.js";
import type { MailHandoff } from "./domain/outbox.js";
import type { SendAdmission } from "./domain/send-admission.js";
import { DEFAULT_PROJECT_AUTH, ProjectAuthenticator } from "./domain/project-auth.js";
import type { Secrets } from "./domain/secrets.js";
import { SignIn } from "./domain/sign-in.js";
import { TenantKeys } from "./domain/signing-keys.js";
import { TemplateDirectory } from "./domain/template-directory.js";
import { PgAdminStore } from "./storage/admin-store.js";
import type { Db } from "./storage/db.js";
import { PgKeyStore } from "./storage/key-store.js";
import { PgOtpStore } from "./storage/otp-store.js";
import { PgSignInStore } from "./storage/sign-in-store.js";
import { PgTenantStore } from "./storage/tenant-store.js";
import { adminServiceImpl, otpInterceptors, otpServiceImpl, sessionServiceImpl } from "./transport/otp-service.js";

/** A service with its implementation, their types checked together where it is made. */
export interface ServiceRegistration {
  readonly service: DescService;
  /** Serves it on a Connect router (gRPC, gRPC-Web, Connect). */
  addTo(router: ConnectRouter): void;
  /** Its methods' implementations with their descriptors, for the REST routes. */
  readonly spec: ServiceImplSpec;
}

function registration<S extends DescService>(service: S, impl: ServiceImpl<S>): ServiceRegistration {
  return { service, addTo: (router) => router.service(service, impl), spec: createServiceImplSpec<S>(service, impl) };
}

export interface Services {
  /** Each service with its implementation, for the Connect router and the REST routes. */
  readonly services: readonly ServiceRegistration[];
  /** The interceptors every protocol runs the RPCs through, outermost first. */
  readonly interceptors: Interceptor[];
}

export async function createServices(
  db: Db,
  config: Config,
  secrets: Secrets,
  logger: Logger,
  adminToken: string | undefined,
  outer: readonly Interceptor[] = [],
  handoff?: MailHandoff,
  admission?: SendAdmission,
): Promise<Services> {
  const tenants = new PgTenantStore(db);
  const adminStore = new PgAdminStore(db);
  const templates = new TemplateDirectory(adminStore, systemClock);
  // One budget for every public route that names a tenant not remembered.
  const lookups = new LookupBudget(systemClock, config.lookupLimit);
  const businesses = new BusinessDirectory(tenants, systemClock, { budget: lookups });
  const publicProjects = new ProjectDirectory(tenants, systemClock, { budget: lookups });
  const projects = new ProjectAuthenticator(tenants, systemClock, { ...DEFAULT_PROJECT_AUTH, ...config.projectAuth });
  const keys = new TenantKeys(
    new PgKeyStore(db),
    tenants,
    secrets,
    systemClock,
    {
      // A retired key stays published as long as a token it signed may live.
      retentionMinutes: Math.max(24 * 60, config.legacyTokenTtlMinutes),
      cacheTtlMs: 60_000,
    },
    { projects: publicProjects, businesses },
  );
  const sender = new OtpSender(new PgOtpStore(db), secrets, config.limits, config.mailFrom.split("@")[1]!, handoff, {
    codeTtlMinutes: config.legacyCodeTtlMinutes,
    minResponseMs: config.legacyMinResponseMs,
  }, admission, systemClock);
  const signIn = new SignIn(new PgSignInStore(db), secrets, keys, systemClock, {
    attempts: config.attempts,
    guessLimit: config.guessLimit,
    legacyTokenTtlMinutes: config.legacyTokenTtlMinutes,
    legacyMinResponseMs: config.legacyMinResponseMs,
  });
  const deps = { keys, businesses, sender, signIn, emailOtp: new EmailOtp(sender, templates, signIn) };
  return {
    services: [
      registration(OtpService, otpServiceImpl(deps)),
      registration(SessionService, sessionServiceImpl(deps)),
      registration(AdminService, adminServiceImpl({ admin: new Admin(adminStore, systemClock, { templates, businesses, projects: bothProjectCaches(projects, publicProjects) }), keys })),
    ],
    interceptors: [...outer, ...otpInterceptors(logger, projects, adminToken)],
  };
}

/** The admin API's project changes reach both caches that hold projects. */
function bothProjectCaches(...caches: { forget(projectId: string): void }[]): { forget(projectId: string): void } {
  return {
    forget: (projectId) => {
      for (const cache of caches) cache.forget(projectId);
    },
  };
}
