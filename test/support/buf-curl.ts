// Runs the buf CLI's `curl` (from @bufbuild/buf in node_modules) against the
// service, as a platform engineer would: no --schema, so everything it knows
// comes from the server's reflection.
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";

const BUF = fileURLToPath(new URL("../../node_modules/.bin/buf", import.meta.url));

export interface BufCurlResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export function bufCurl(args: readonly string[], timeoutMs = 20_000): Promise<BufCurlResult> {
  return new Promise((resolve) => {
    execFile(BUF, ["curl", "--protocol", "grpc", "--http2-prior-knowledge", ...args], { timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === "number" ? ((err as { code: number }).code) : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}
