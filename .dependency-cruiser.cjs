/**
 * Import boundaries of otp-service (docs/adr/0001-layers-and-import-boundaries.md):
 * transport → domain ← storage, mail; server.ts (the composition root, with src/wiring/) wires them.
 */
const outward = "^src/(transport|storage|mail|config(\\.ts|/)|web|cli|server\\.ts|wiring|services\\.ts|observability)";

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: "domain-imports-nothing-outward",
      comment: "The domain owns its types, rules and ports; adapters depend on it, never the reverse.",
      severity: "error",
      from: { path: "^src/domain/" },
      to: { path: outward },
    },
    {
      name: "storage-is-an-adapter",
      comment: "Storage implements domain ports; it imports neither transport nor mail.",
      severity: "error",
      from: { path: "^src/storage/" },
      to: { path: "^src/(transport|mail|web|cli)/" },
    },
    {
      name: "mail-is-an-adapter",
      comment: "Mail implements domain ports; it imports neither transport nor storage.",
      severity: "error",
      from: { path: "^src/mail/" },
      to: { path: "^src/(transport|storage|web|cli)/" },
    },
    {
      name: "transport-reaches-adapters-through-the-domain",
      comment: "Handlers call use cases and ports; only the composition root knows storage and mail.",
      severity: "error",
      from: { path: "^src/(transport|web)/" },
      to: { path: "^src/(storage|mail)/" },
    },
    {
      name: "no-circular",
      comment: "A cycle makes two modules one; split or invert one of the imports.",
      severity: "error",
      from: { path: "^src/" },
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "^(gen|node_modules)/" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: { extensions: [".ts", ".js"] },
  },
};
