// The sign-in page and its script, read from dist/web/ where `npm run build`
// (src/build.ts) put them. The service only reads them: it never builds,
// writes or spawns anything at start-up, so it runs from a read-only tree.
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

// The same two levels up from src/web/assets.ts (tests, tsx) and from
// dist/server/server.mjs (the bundled service): the project's root.
const WEB_DIST = fileURLToPath(new URL("../../dist/web/", import.meta.url));

export interface WebAssets {
  readonly html: string;
  readonly script: string;
}

export async function loadWebAssets(): Promise<WebAssets> {
  try {
    return {
      html: await readFile(`${WEB_DIST}signin.html`, "utf8"),
      script: await readFile(`${WEB_DIST}signin.js`, "utf8"),
    };
  } catch (err) {
    throw new Error(`the sign-in page is not built (${WEB_DIST}signin.{html,js} missing): run \`npm run build\``, { cause: err });
  }
}
