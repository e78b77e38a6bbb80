// deploy/kubernetes/: valid against the Kubernetes schemas (unknown fields
// included), complete as a kustomization, and consistent with the service:
// probes on its health routes, the hardening the issue asks for, the
// secrets it needs, a shutdown that fits the grace period, and a migration
// Job that runs the migrate step while instances do not migrate.
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { parseAllDocuments } from "yaml";
import { beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { strictFieldProblems, validateWithModels, type Manifest } from "./kubernetes-schema.js";
import { REPO } from "./support.js";

const DIR = path.join(REPO, "deploy/kubernetes");
// Manifests are free-form YAML; the schema checks above type them.
// biome-ignore lint/suspicious/noExplicitAny: walked freely by the consistency checks
type Doc = any;

async function load(file: string): Promise<Manifest[]> {
  const docs = parseAllDocuments(await readFile(path.join(DIR, file), "utf8"));
  return docs.map((d) => {
    if (d.errors.length) throw new Error(`${file}: ${d.errors.map((e) => e.message).join("; ")}`);
    return d.toJS() as Manifest;
  });
}

let kustomization: { resources: string[]; images: { name: string; newTag: string }[] };
let manifests: Manifest[];
let secretExample: Manifest;
/** strictFieldProblems of the manifests, the Secret's example, then the broken copies below. */
let problems: string[][];
const find = (kind: string, name: string) => {
  const m = manifests.find((d) => d.kind === kind && d.metadata.name === name);
  if (!m) throw new Error(`no ${kind} ${name}`);
  return m as Doc;
};

beforeAll(async () => {
  kustomization = (await load("kustomization.yaml"))[0] as never;
  manifests = (await Promise.all(kustomization.resources.map(load))).flat();
  [secretExample] = await load("secret.example.yaml");
  problems = strictFieldProblems([...manifests, secretExample!, ...broken()]);
});

/** Copies with an unknown field, a misspelt one, and a wrong type. */
function broken(): Manifest[] {
  const deployment = structuredClone(find("Deployment", "otp-service"));
  deployment.spec.template.spec.containers[0].securityContext.readOnlyRootFileSystem = true; // misspelt
  deployment.spec.template.spec.containers[0].livenessProbe.httpGet.pathh = "/healthz";
  const service = structuredClone(find("Service", "otp-service"));
  service.spec.ports[0].port = "eighty";
  return [deployment, service];
}

describe("the manifests", () => {
  it("are all in the kustomization (except the Secret's example), and it names only files that exist", async () => {
    const yamls = (await readdir(DIR)).filter((f) => f.endsWith(".yaml")).sort();
    expect([...kustomization.resources, "kustomization.yaml", "secret.example.yaml"].sort()).toEqual(yamls);
  });

  it("hold what the issue lists", () => {
    expect(manifests.map((m) => `${m.kind}/${m.metadata.name}`).sort()).toEqual([
      "Deployment/otp-service",
      "HorizontalPodAutoscaler/otp-service",
      "Job/otp-service-migrate",
      "NetworkPolicy/otp-service",
      "NetworkPolicy/otp-service-migrate",
      "PodDisruptionBudget/otp-service",
      "Service/otp-service",
    ]);
  });

  it("pass the Kubernetes JSON schemas", async () => {
    for (const m of [...manifests, secretExample]) await validateWithModels(m);
  });

  it("have no field the Kubernetes schemas do not know", () => {
    expect(problems.slice(0, manifests.length + 1).flat()).toEqual([]);
  });

  it("the checks catch an unknown field, a misspelt one, and a wrong type", async () => {
    const [deployment, service] = problems.slice(manifests.length + 1).map((p) => p.join("\n"));
    expect(deployment).toContain("readOnlyRootFileSystem");
    expect(deployment).toContain("pathh");
    expect(service).toMatch(/Service\/otp-service: .*string.*number/);
    const bad = structuredClone(find("Deployment", "otp-service"));
    bad.spec.replicas = "two";
    await expect(validateWithModels(bad)).rejects.toThrow(/replicas/);
  });
});

describe("the Deployment", () => {
  const pod = () => find("Deployment", "otp-service").spec.template;
  const container = () => pod().spec.containers[0];
  const env = () => Object.fromEntries(container().env.map((e: Doc) => [e.name, e.value ?? e.valueFrom]));

  it("probes readiness on /readyz, liveness and start-up on /healthz, on the container's port", () => {
    const c = container();
    expect(c.readinessProbe.httpGet).toEqual({ path: "/readyz", port: "http" });
    expect(c.livenessProbe.httpGet).toEqual({ path: "/healthz", port: "http" });
    expect(c.startupProbe.httpGet).toEqual({ path: "/healthz", port: "http" });
    expect(c.ports).toEqual([{ name: "http", containerPort: Number(env().PORT), protocol: "TCP" }]);
    expect(env().HOST).toBe("0.0.0.0");
  });

  it("runs hardened: non-root, read-only root filesystem, no privilege escalation, no capabilities", () => {
    const c = container();
    expect(pod().spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000 });
    expect(c.securityContext).toEqual({
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
    });
    expect(c.resources.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
    expect(c.resources.limits.memory).toEqual(expect.any(String));
    expect(pod().spec.automountServiceAccountToken).toBe(false);
  });

  it("takes the pepper, the admin and metrics tokens and the URLs from the Secret the example documents", () => {
    for (const name of ["OTP_PEPPER", "ADMIN_TOKEN", "METRICS_TOKEN", "DATABASE_URL", "SMTP_URL"]) {
      expect(env()[name], name).toEqual({ secretKeyRef: { name: secretExample.metadata.name, key: name } });
    }
    const keys = Object.keys(secretExample.stringData as object);
    const refs = [...manifests]
      .flatMap((m: Doc) => (m.spec?.template?.spec?.containers ?? []).flatMap((c: Doc) => c.env ?? []))
      .flatMap((e: Doc) => (e.valueFrom?.secretKeyRef ? [e.valueFrom.secretKeyRef.key] : []));
    for (const key of refs) expect(keys).toContain(key);
  });

  it("the Secret's example carries no value that could pass for a real secret", () => {
    for (const [key, value] of Object.entries(secretExample.stringData as Record<string, string>)) expect(value, key).toBe("");
  });

  it("stops within the grace period: preStop delay + SHUTDOWN_GRACE_MS + the forced-exit margin", () => {
    const [, seconds] = container().lifecycle.preStop.exec.command;
    const total = Number(seconds) + Number(env().SHUTDOWN_GRACE_MS) / 1000 + 5;
    expect(total).toBeLessThanOrEqual(pod().spec.terminationGracePeriodSeconds);
    expect(Number(seconds)).toBeGreaterThanOrEqual(find("Deployment", "otp-service").spec.template.spec.containers[0].readinessProbe.periodSeconds);
  });

  it("sets an environment the service accepts (the Secret's values filled in)", () => {
    const fromSecret: Record<string, string> = {
      OTP_PEPPER: "p".repeat(64),
      ADMIN_TOKEN: "a".repeat(48),
      METRICS_TOKEN: "m".repeat(48),
      DATABASE_URL: "postgres://otp_runtime:pw@pgbouncer:6432/otp",
      SMTP_URL: "smtp://relay.example.com:587",
    };
    const envs = Object.fromEntries(Object.entries(env()).map(([k, v]) => [k, typeof v === "string" ? v : fromSecret[k]]));
    const config = loadConfig(envs);
    expect(config).toMatchObject({ host: "0.0.0.0", port: 8080, migrateOnStart: false, shutdownGraceMs: 10_000 });
  });

  it("does not migrate at start; the Job runs the migrate step with the schema owner's URL, hardened the same way", () => {
    expect(env().MIGRATE_ON_START).toBe("false");
    const job = find("Job", "otp-service-migrate").spec.template.spec;
    expect(job.containers[0].command).toEqual(["node", "dist/server/migrate.mjs"]);
    expect(job.containers[0].env).toEqual([
      { name: "DATABASE_URL", valueFrom: { secretKeyRef: { name: "otp-service", key: "MIGRATION_DATABASE_URL" } } },
    ]);
    expect(job.containers[0].securityContext).toEqual(container().securityContext);
    expect(job.containers[0].image).toBe(container().image);
  });

  it("is scraped by Prometheus on its port", () => {
    expect(pod().metadata.annotations).toEqual({ "prometheus.io/scrape": "true", "prometheus.io/port": env().PORT, "prometheus.io/path": "/metrics" });
  });
});

describe("the Service, the budget, the autoscaler and the network policy", () => {
  const podLabels = () => find("Deployment", "otp-service").spec.template.metadata.labels;

  it("the Service offers HTTP/1.1 and h2c on the container's port, with appProtocol", () => {
    const service = find("Service", "otp-service");
    expect(service.spec.selector).toEqual(podLabels());
    expect(service.spec.ports.map((p: Doc) => [p.targetPort, p.appProtocol])).toEqual([
      ["http", "http"],
      ["http", "kubernetes.io/h2c"],
    ]);
  });

  it("the PodDisruptionBudget, the NetworkPolicy and the autoscaler select the Deployment's pods", () => {
    expect(find("PodDisruptionBudget", "otp-service").spec.selector.matchLabels).toEqual(podLabels());
    expect(find("NetworkPolicy", "otp-service").spec.podSelector.matchLabels).toEqual(podLabels());
    expect(find("HorizontalPodAutoscaler", "otp-service").spec.scaleTargetRef).toEqual({ apiVersion: "apps/v1", kind: "Deployment", name: "otp-service" });
    const { minReplicas } = find("HorizontalPodAutoscaler", "otp-service").spec;
    expect(minReplicas).toBeGreaterThan(find("PodDisruptionBudget", "otp-service").spec.minAvailable);
  });

  it("the NetworkPolicy lets in only the service port", () => {
    const policy = find("NetworkPolicy", "otp-service").spec;
    expect(policy.policyTypes).toEqual(["Ingress", "Egress"]);
    expect(policy.ingress).toEqual([{ ports: [{ port: 8080, protocol: "TCP" }] }]);
  });
});
