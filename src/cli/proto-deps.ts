// Writes .proto-deps/buf/validate/validate.proto (git-ignored) so that buf
// can compile proto/ with its `(buf.validate.field)` rules. The text is
// printed from the FileDescriptorProto that @bufbuild/protovalidate embeds
// (the same descriptor its validator runs on), so the schema the compiler
// sees and the rules the service enforces come from one installed package,
// with no Buf Schema Registry and no copy of third-party .proto text in the
// repository (docs/adr/0010-validation-rules-in-the-proto.md).
// Only structure is printed: the compiler needs names, numbers, types,
// labels, oneofs, extension ranges and extensions; documentation and the
// options protovalidate keeps for itself (predefined CEL) are left out.
// Run before every buf command by the npm scripts.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type DescEnum, type DescExtension, type DescField, type DescFile, type DescMessage, ScalarType } from "@bufbuild/protobuf";
import { file_buf_validate_validate } from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";

const root = fileURLToPath(new URL("../../", import.meta.url));
export const PROTO_DEPS_DIR = join(root, ".proto-deps");

/** Proto's spelling of each scalar type (ScalarType's names, lower-cased). */
function scalarName(scalar: ScalarType): string {
  return ScalarType[scalar].toLowerCase();
}

function typeOf(field: DescField | DescExtension): string {
  switch (field.fieldKind) {
    case "scalar":
      return scalarName(field.scalar);
    case "enum":
      return `.${field.enum.typeName}`;
    case "message":
      return `.${field.message.typeName}`;
    case "list":
      if (field.listKind === "scalar") return scalarName(field.scalar);
      return `.${field.listKind === "enum" ? field.enum.typeName : field.message.typeName}`;
    case "map": {
      const value = field.mapKind === "scalar" ? scalarName(field.scalar) : `.${field.mapKind === "enum" ? field.enum.typeName : field.message.typeName}`;
      return `map<${scalarName(field.mapKey)}, ${value}>`;
    }
  }
}

function fieldLine(field: DescField | DescExtension, inOneof: boolean): string {
  const type = typeOf(field);
  const label = inOneof || field.fieldKind === "map" ? "" : field.fieldKind === "list" ? "repeated " : field.proto.label === 2 ? "required " : "optional ";
  const dflt = field.proto.defaultValue;
  const option = dflt === undefined || dflt === "" ? "" : ` [default = ${field.fieldKind === "scalar" && field.scalar === ScalarType.STRING ? JSON.stringify(dflt) : dflt}]`;
  return `${label}${type} ${field.name} = ${field.number}${option};`;
}

function printEnum(e: DescEnum, indent: string): string[] {
  const out = [`${indent}enum ${e.name} {`, ...e.values.map((v) => `${indent}  ${v.name} = ${v.number};`)];
  // An enum's reserved ranges include their end, unlike a message's.
  for (const r of e.proto.reservedRange) out.push(`${indent}  reserved ${range(r.start, r.end + 1)};`);
  if (e.proto.reservedName.length > 0) out.push(`${indent}  reserved ${e.proto.reservedName.map((n) => JSON.stringify(n)).join(", ")};`);
  out.push(`${indent}}`);
  return out;
}

function range(start: number, endExclusive: number): string {
  if (endExclusive >= 536_870_912) return `${start} to max`;
  return endExclusive - 1 === start ? `${start}` : `${start} to ${endExclusive - 1}`;
}

function printMessage(m: DescMessage, indent: string): string[] {
  const i = `${indent}  `;
  const out = [`${indent}message ${m.name} {`];
  for (const nested of m.nestedEnums) out.push(...printEnum(nested, i));
  for (const nested of m.nestedMessages) if (!nested.proto.options?.mapEntry) out.push(...printMessage(nested, i));
  const printedOneofs = new Set<string>();
  for (const field of m.fields) {
    if (field.oneof) {
      if (printedOneofs.has(field.oneof.name)) continue;
      printedOneofs.add(field.oneof.name);
      out.push(`${i}oneof ${field.oneof.name} {`, ...field.oneof.fields.map((f) => `${i}  ${fieldLine(f, true)}`), `${i}}`);
    } else {
      out.push(`${i}${fieldLine(field, false)}`);
    }
  }
  for (const r of m.proto.extensionRange) out.push(`${i}extensions ${range(r.start, r.end)};`);
  for (const r of m.proto.reservedRange) out.push(`${i}reserved ${range(r.start, r.end)};`);
  if (m.proto.reservedName.length > 0) out.push(`${i}reserved ${m.proto.reservedName.map((n) => JSON.stringify(n)).join(", ")};`);
  for (const ext of m.nestedExtensions) out.push(...printExtension(ext, i));
  out.push(`${indent}}`);
  return out;
}

function printExtension(ext: DescExtension, indent: string): string[] {
  return [`${indent}extend .${ext.extendee.typeName} {`, `${indent}  ${fieldLine(ext, false)}`, `${indent}}`];
}

/** The .proto text of a proto2 file descriptor: its structure, enough to compile against. */
export function printProto(file: DescFile, header: string): string {
  if (file.proto.syntax !== "" && file.proto.syntax !== "proto2") throw new Error(`${file.proto.name}: only proto2 is printed, not ${file.proto.syntax}`);
  const lines = [header, 'syntax = "proto2";', "", `package ${file.proto.package};`, ""];
  for (const dep of file.proto.dependency) lines.push(`import "${dep}";`);
  lines.push("");
  for (const e of file.enums) lines.push(...printEnum(e, ""));
  for (const m of file.messages) lines.push(...printMessage(m, ""));
  for (const ext of file.extensions) lines.push(...printExtension(ext, ""));
  return `${lines.join("\n")}\n`;
}

/** Writes the derived .proto files under .proto-deps/ and returns their paths. */
export function writeProtoDeps(): string[] {
  const pkg = JSON.parse(readFileSync(join(root, "node_modules/@bufbuild/protovalidate/package.json"), "utf8")) as { version: string };
  const file = file_buf_validate_validate;
  const header = `// Printed by src/cli/proto-deps.ts from the descriptor embedded in @bufbuild/protovalidate ${pkg.version}. Not committed; do not edit.`;
  const path = join(PROTO_DEPS_DIR, file.proto.name);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, printProto(file, header));
  return [path];
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) writeProtoDeps();
