// Checks Kubernetes manifests against the Kubernetes API's schemas, as the
// API server with strict field validation would: the `kubernetes-models`
// package's JSON-schema validators (types, required fields, formats, enums),
// and, for what those validators let through (they allow unknown fields),
// TypeScript's excess-property check against the same package's
// interfaces, generated from the same OpenAPI document.
import path from "node:path";
import ts from "typescript";
import { REPO } from "./support.js";

interface Kind {
  readonly module: string;
  readonly type: string;
}

// apiVersion/kind → the kubernetes-models module and its interface.
const KINDS: Record<string, Kind> = {
  "apps/v1/Deployment": { module: "kubernetes-models/apps/v1/Deployment", type: "IDeployment" },
  "v1/Service": { module: "kubernetes-models/v1/Service", type: "IService" },
  "v1/Secret": { module: "kubernetes-models/v1/Secret", type: "ISecret" },
  "policy/v1/PodDisruptionBudget": { module: "kubernetes-models/policy/v1/PodDisruptionBudget", type: "IPodDisruptionBudget" },
  "autoscaling/v2/HorizontalPodAutoscaler": { module: "kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler", type: "IHorizontalPodAutoscaler" },
  "batch/v1/Job": { module: "kubernetes-models/batch/v1/Job", type: "IJob" },
  "networking.k8s.io/v1/NetworkPolicy": { module: "kubernetes-models/networking.k8s.io/v1/NetworkPolicy", type: "INetworkPolicy" },
};

export type Manifest = { apiVersion: string; kind: string; metadata: { name: string } } & Record<string, unknown>;

function kindOf(doc: Manifest): Kind {
  const kind = KINDS[`${doc.apiVersion}/${doc.kind}`];
  if (!kind) throw new Error(`no schema for ${doc.apiVersion} ${doc.kind} (${doc.metadata?.name})`);
  return kind;
}

/** The JSON-schema check: throws with the validator's message. */
export async function validateWithModels(doc: Manifest): Promise<void> {
  const kind = kindOf(doc);
  const mod = (await import(kind.module)) as Record<string, new (data: unknown) => { validate(): void }>;
  const Model = mod[kind.type.slice(1)]!;
  new Model(doc).validate();
}

/**
 * The strict check: every field must exist in its kind's schema. One
 * TypeScript program for all `docs` (it takes seconds); returns, for each
 * doc, the problems found in it.
 */
export function strictFieldProblems(docs: readonly Manifest[]): string[][] {
  const fileName = path.join(REPO, "test/deploy/__manifests_check__.ts");
  const chunks = docs.map((doc, i) => {
    const kind = kindOf(doc);
    return `import type { ${kind.type} as T${i} } from "${kind.module}";\nexport const doc${i}: T${i} = ${JSON.stringify(doc, null, 1)};\n`;
  });
  const starts: number[] = [];
  let offset = 0;
  for (const chunk of chunks) {
    starts.push(offset);
    offset += chunk.length;
  }
  const source = chunks.join("");
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const read = host.readFile.bind(host);
  const getSource = host.getSourceFile.bind(host);
  host.fileExists = ((exists) => (f: string) => f === fileName || exists(f))(host.fileExists.bind(host));
  host.readFile = (f) => (f === fileName ? source : read(f));
  host.getSourceFile = (f, lang, ...rest) => (f === fileName ? ts.createSourceFile(f, source, lang) : getSource(f, lang, ...rest));
  const program = ts.createProgram([fileName], options, host);
  const file = program.getSourceFile(fileName)!;
  const problems: string[][] = docs.map(() => []);
  for (const d of [...program.getSyntacticDiagnostics(file), ...program.getSemanticDiagnostics(file)]) {
    let owner = 0;
    while (owner + 1 < starts.length && starts[owner + 1]! <= (d.start ?? 0)) owner++;
    problems[owner]!.push(`${docs[owner]!.kind}/${docs[owner]!.metadata?.name}: ${ts.flattenDiagnosticMessageText(d.messageText, " ")}`);
  }
  return problems;
}
