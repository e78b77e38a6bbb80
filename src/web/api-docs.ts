// The REST API's description: docs/openapi.json (written by `npm run
// generate` from proto/, embedded in the build) served at /openapi.json, and
// a reference page at /docs rendered from it by swagger-ui-dist, whose files
// are served from node_modules: the page loads nothing from elsewhere.
// Those two files (about 2 MB) are read on the first request for them and
// then kept as bytes: an instance whose /docs nobody opens does not hold
// them, and one that serves them reads the disk once, however often asked.
import { access, readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import openapi from "../../docs/openapi.json" with { type: "json" };

export interface ApiDocs {
  /** The OpenAPI document, as served. */
  readonly openapi: string;
  /** Path → the page or asset there (its body read on first use). */
  readonly files: ReadonlyMap<string, () => Promise<DocFile>>;
}

export interface DocFile {
  readonly type: string;
  readonly body: string | Buffer;
}

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>otp-service REST API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
<div id="api"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
`;

// No inline script (the page's CSP has none); "try it out" calls go to this origin.
const INIT = `window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#api", deepLinking: true, validatorUrl: null });\n`;

export async function loadApiDocs(): Promise<ApiDocs> {
  const dist = path.dirname(createRequire(import.meta.url).resolve("swagger-ui-dist/package.json"));
  const css = path.join(dist, "swagger-ui.css");
  const bundle = path.join(dist, "swagger-ui-bundle.js");
  // A broken install still fails at start, not on the first visit.
  await Promise.all([access(css), access(bundle)]);
  const fixed = (type: string, body: string) => () => Promise.resolve({ type, body });
  return {
    openapi: JSON.stringify(openapi),
    files: new Map([
      ["/docs", fixed("text/html; charset=utf-8", PAGE)],
      ["/docs/init.js", fixed("text/javascript; charset=utf-8", INIT)],
      ["/docs/swagger-ui.css", readOnce("text/css; charset=utf-8", css)],
      ["/docs/swagger-ui-bundle.js", readOnce("text/javascript; charset=utf-8", bundle)],
    ]),
  };
}

/** A file read on first use and kept; a failed read is tried again next time. */
function readOnce(type: string, file: string): () => Promise<DocFile> {
  let read: Promise<DocFile> | undefined;
  return () => {
    read ??= readFile(file).then(
      (body) => ({ type, body }),
      (err: unknown) => {
        read = undefined;
        throw err;
      },
    );
    return read;
  };
}
