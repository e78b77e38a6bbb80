// Builds the sign-in page's script with esbuild into dist/web/ (run at
// `npm install` through the prepare script; the server builds it once at
// start-up too when it is missing). Nothing is fetched at run time.
import { readFile, stat } from "node:fs/promises";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const WEB_DIST = `${ROOT}dist/web/`;
const ENTRY = `${ROOT}src/web/signin.ts`;

export async function bundleWeb(): Promise<void> {
  await build({
    entryPoints: [ENTRY],
    outfile: `${WEB_DIST}signin.js`,
    bundle: true,
    format: "esm",
    platform: "browser",
    target: ["es2022"],
    minify: true,
    sourcemap: false,
    logLevel: "silent",
  });
}

export interface WebAssets {
  readonly html: string;
  readonly script: string;
}

/** The page and its script, building the script first if it is missing or older than its source. */
export async function loadWebAssets(): Promise<WebAssets> {
  const mtime = (file: string) => stat(file).then((s) => s.mtimeMs, () => -1);
  if ((await mtime(`${WEB_DIST}signin.js`)) < (await mtime(ENTRY))) await bundleWeb();
  return {
    html: await readFile(`${ROOT}src/web/signin.html`, "utf8"),
    script: await readFile(`${WEB_DIST}signin.js`, "utf8"),
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  bundleWeb().then(
    () => console.log("built dist/web/signin.js"),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
