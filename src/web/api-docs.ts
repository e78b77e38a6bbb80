// The REST API's description: docs/openapi.json (written by `npm run
// generate` from proto/, embedded in the build) served at /openapi.json, and
// a reference page at /docs rendered from it by swagger-ui-dist, whose files
// are served from node_modules: the page loads nothing from elsewhere.
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import openapi from "../../docs/openapi.json" with { type: "json" };

export interface ApiDocs {
  /** The OpenAPI document, as served. */
  readonly openapi: string;
  /** Path → body and content type, for the page and its assets. */
  readonly files: ReadonlyMap<string, { readonly type: string; readonly body: string }>;
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
  return {
    openapi: JSON.stringify(openapi),
    files: new Map([
      ["/docs", { type: "text/html; charset=utf-8", body: PAGE }],
      ["/docs/init.js", { type: "text/javascript; charset=utf-8", body: INIT }],
      ["/docs/swagger-ui.css", { type: "text/css; charset=utf-8", body: await readFile(path.join(dist, "swagger-ui.css"), "utf8") }],
      ["/docs/swagger-ui-bundle.js", { type: "text/javascript; charset=utf-8", body: await readFile(path.join(dist, "swagger-ui-bundle.js"), "utf8") }],
    ]),
  };
}
