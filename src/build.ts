// `npm run build` (and `npm install`, through the prepare script): bundles
// the service into dist/server/ (server.mjs, the migrate step migrate.mjs,
// the SMTP thread smtp-thread.mjs)
// and the sign-in page into dist/web/. Run by tsx, never bundled itself, so
// nothing here runs inside the service.
//
//   tsx src/build.ts [outDir]      (outDir defaults to dist/)
import { copyFile, mkdir } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

export async function buildDist(outDir = path.join(ROOT, "dist")): Promise<void> {
  await mkdir(path.join(outDir, "web"), { recursive: true });
  await Promise.all([
    build({
      // smtp-thread.mjs: the SMTP thread's entry (src/mail/threaded-smtp-pool.ts).
      entryPoints: [path.join(ROOT, "src/server.ts"), path.join(ROOT, "src/migrate.ts"), path.join(ROOT, "src/mail/smtp-thread.ts")],
      outdir: path.join(outDir, "server"),
      // Every entry and chunk side by side in dist/server/, as the SMTP thread's URL expects.
      entryNames: "[name]",
      outExtension: { ".js": ".mjs" },
      bundle: true,
      platform: "node",
      format: "esm",
      // node_modules stay outside the bundle (npm ci --omit=dev installs them).
      packages: "external",
      // Modules imported dynamically (the tracing SDK) become chunks of their
      // own, loaded only when imported.
      splitting: true,
      target: "node20",
      sourcemap: true,
      logLevel: "warning",
    }),
    build({
      entryPoints: [path.join(ROOT, "src/web/signin.ts")],
      outfile: path.join(outDir, "web/signin.js"),
      bundle: true,
      format: "esm",
      platform: "browser",
      target: ["es2022"],
      minify: true,
      sourcemap: false,
      logLevel: "warning",
    }),
    copyFile(path.join(ROOT, "src/web/signin.html"), path.join(outDir, "web/signin.html")),
  ]);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  buildDist(process.argv[2] ? path.resolve(process.argv[2]) : undefined).catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
