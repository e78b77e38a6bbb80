// Writes docs/openapi.json: the OpenAPI 3.1 document of the REST routes,
// from the schema in proto/ as buf builds it (with its comments, which the
// descriptors generated into gen/ do not carry). Run by `npm run generate`;
// CI regenerates it and fails if the committed file differs.
// `--stdout` prints it instead of writing the file.
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { createFileRegistry, fromBinary, type DescService } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { getComments } from "@bufbuild/protoplugin";
import { buildOpenApi } from "../transport/openapi.js";
import { writeProtoDeps } from "./proto-deps.js";

const root = fileURLToPath(new URL("../../", import.meta.url));

/** The OpenAPI document, as committed in docs/openapi.json (text, with the final newline). */
export function generateOpenApi(): string {
  writeProtoDeps();
  const image = execFileSync(fileURLToPath(new URL("node_modules/.bin/buf", `file://${root}`)), ["build", "--path", "proto/otp", "-o", "-#format=binpb"], {
    cwd: root,
    maxBuffer: 64 * 1024 * 1024,
  });
  const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, image));
  const services: DescService[] = [];
  for (const file of registry.files) if (file.proto.name.startsWith("otp/")) services.push(...file.services);
  const version = (JSON.parse(readFileSync(`${root}package.json`, "utf8")) as { version: string }).version;
  const doc = buildOpenApi(
    services,
    (desc) => {
      const lines = getComments(desc).leading?.replace(/\n$/, "").split("\n").map((l) => l.replace(/^ /, ""));
      return lines?.join("\n").trim() || undefined;
    },
    {
      title: "otp-service REST API",
      version,
      description:
        "Email one-time passcodes for passwordless sign-in. Every route here is also an RPC over gRPC, gRPC-Web and Connect on the same port (see grpc.reflection). Generated from proto/ by `npm run generate`.",
    },
  );
  return `${JSON.stringify(doc, null, 2)}\n`;
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const text = generateOpenApi();
  if (process.argv.includes("--stdout")) process.stdout.write(text);
  else writeFileSync(`${root}docs/openapi.json`, text);
}
