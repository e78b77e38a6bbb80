// The validate.proto printed for buf must compile to the very descriptor
// @bufbuild/protovalidate embeds (what its validator reads at run time):
// same messages, fields, numbers, types, labels, oneofs, ranges and
// extensions. Documentation and options are not printed, so not compared.
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { fromBinary, toJson } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import { file_buf_validate_validate } from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";
import { expect, test } from "vitest";
import { writeProtoDeps } from "../../src/cli/proto-deps.js";

const root = fileURLToPath(new URL("../../", import.meta.url));

function structure(file: FileDescriptorProto): unknown {
  const strip = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(strip);
    if (node === null || typeof node !== "object") return node;
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(node)) if (key !== "options" && key !== "jsonName" && key !== "sourceCodeInfo") out[key] = strip(value);
    return out;
  };
  return strip(toJson(FileDescriptorProtoSchema, file));
}

test("the printed buf/validate/validate.proto compiles to the descriptor protovalidate embeds", () => {
  writeProtoDeps();
  const image = execFileSync(`${root}node_modules/.bin/buf`, ["build", "--path", ".proto-deps/buf", "-o", "-#format=binpb"], { cwd: root, maxBuffer: 16 * 1024 * 1024 });
  const built = fromBinary(FileDescriptorSetSchema, image).file.find((f) => f.name === "buf/validate/validate.proto");
  expect(built).toBeDefined();
  expect(structure(built!)).toEqual(structure(file_buf_validate_validate.proto));
});
