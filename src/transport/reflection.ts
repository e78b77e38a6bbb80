// gRPC server reflection (grpc.reflection.v1 and v1alpha), so grpcurl,
// grpcui, Postman and `buf curl` work without a copy of our schema. The
// answers are the file descriptors protobuf-es generated into gen/ for the
// services served, with everything they import. connect-node ships no
// reflection and no maintained package implements it for connect-es 2, so
// the ServerReflectionInfo bidi stream is implemented here; it needs
// HTTP/2 (gRPC), as every reflection client uses.
import { fromBinary, toBinary, create, type DescExtension, type DescFile, type DescMessage, type DescService } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  ServerReflection,
  ServerReflectionRequestSchema,
  ServerReflectionResponseSchema,
  type ServerReflectionRequest,
  type ServerReflectionResponse,
} from "../../gen/grpc/reflection/v1/reflection_pb.js";
import {
  ServerReflection as ServerReflectionV1Alpha,
  ServerReflectionRequestSchema as V1AlphaRequestSchema,
  ServerReflectionResponseSchema as V1AlphaResponseSchema,
  type ServerReflectionRequest as V1AlphaRequest,
} from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";

/** The reflection services themselves, to be served beside the ones they describe. */
export const reflectionServices = [ServerReflection, ServerReflectionV1Alpha] as const;

/** gRPC's NOT_FOUND, as the reflection protocol reports a missing symbol or file. */
const NOT_FOUND = 5;
const INVALID_ARGUMENT = 3;

/** What reflection can tell about a set of services: their files, symbols and extensions. */
export class DescriptorIndex {
  private readonly files = new Map<string, DescFile>();
  private readonly symbols = new Map<string, DescFile>();
  private readonly extensions = new Map<string, Map<number, DescFile>>();
  private readonly encoded = new Map<string, Uint8Array>();
  readonly serviceNames: readonly string[];

  constructor(services: readonly DescService[]) {
    this.serviceNames = services.map((s) => s.typeName);
    for (const service of services) this.addFile(service.file);
  }

  private addFile(file: DescFile): void {
    if (this.files.has(file.proto.name)) return;
    this.files.set(file.proto.name, file);
    for (const dep of file.dependencies) this.addFile(dep);
    const addMessage = (m: DescMessage) => {
      this.symbols.set(m.typeName, file);
      for (const e of m.nestedEnums) this.symbols.set(e.typeName, file);
      for (const x of m.nestedExtensions) this.addExtension(x, file);
      for (const n of m.nestedMessages) addMessage(n);
    };
    for (const m of file.messages) addMessage(m);
    for (const e of file.enums) this.symbols.set(e.typeName, file);
    for (const x of file.extensions) this.addExtension(x, file);
    for (const s of file.services) {
      this.symbols.set(s.typeName, file);
      for (const m of s.methods) this.symbols.set(`${s.typeName}.${m.name}`, file);
    }
  }

  private addExtension(x: DescExtension, file: DescFile): void {
    this.symbols.set(x.typeName, file);
    const byNumber = this.extensions.get(x.extendee.typeName) ?? new Map<number, DescFile>();
    byNumber.set(x.number, file);
    this.extensions.set(x.extendee.typeName, byNumber);
  }

  fileByName(name: string): DescFile | undefined {
    return this.files.get(name);
  }

  fileContainingSymbol(symbol: string): DescFile | undefined {
    return this.symbols.get(symbol.replace(/^\./, ""));
  }

  fileContainingExtension(typeName: string, number: number): DescFile | undefined {
    return this.extensions.get(typeName.replace(/^\./, ""))?.get(number);
  }

  /** Extension numbers of a message type; undefined if the type is unknown. */
  extensionNumbersOf(typeName: string): number[] | undefined {
    const name = typeName.replace(/^\./, "");
    if (!this.symbols.has(name)) return undefined;
    return [...(this.extensions.get(name)?.keys() ?? [])].sort((a, b) => a - b);
  }

  /** The serialized FileDescriptorProto of a file. */
  encode(file: DescFile): Uint8Array {
    let bytes = this.encoded.get(file.proto.name);
    if (!bytes) {
      bytes = toBinary(FileDescriptorProtoSchema, file.proto);
      this.encoded.set(file.proto.name, bytes);
    }
    return bytes;
  }
}

/** The longest name (file, symbol, type, host) a reflection request is answered for. */
const MAX_NAME = 1_024;

/** The caller's strings in a reflection request. */
function namesOf(req: ServerReflectionRequest): string[] {
  const m = req.messageRequest;
  const names = [req.host];
  if (m.case === "fileByFilename" || m.case === "fileContainingSymbol" || m.case === "allExtensionNumbersOfType") names.push(m.value);
  if (m.case === "fileContainingExtension") names.push(m.value.containingType);
  return names;
}

/**
 * Answers one reflection request. `sent` holds the files already sent on this
 * stream: as gRPC's own servers do, a file's imports are sent with it only
 * once per stream, the requested file always.
 */
export function answerReflection(index: DescriptorIndex, req: ServerReflectionRequest, sent: Set<string>): ServerReflectionResponse {
  if (namesOf(req).some((name) => name.length > MAX_NAME)) {
    // No file, symbol or type is that long. Echoed (the request, and the name
    // quoted in the message) it would cost the server many times what it
    // cost the caller, who needs no credentials for this service.
    return create(ServerReflectionResponseSchema, {
      messageResponse: { case: "errorResponse", value: { errorCode: INVALID_ARGUMENT, errorMessage: `a name over ${MAX_NAME} characters` } },
    });
  }
  const base = { validHost: req.host, originalRequest: req };
  const fail = (code: number, message: string) =>
    create(ServerReflectionResponseSchema, { ...base, messageResponse: { case: "errorResponse", value: { errorCode: code, errorMessage: message } } });
  const files = (file: DescFile | undefined, what: string) => {
    if (!file) return fail(NOT_FOUND, `${what} not found`);
    const out: Uint8Array[] = [];
    const queue = [file];
    for (let first = true; queue.length > 0; first = false) {
      const f = queue.shift()!;
      if (first || !sent.has(f.proto.name)) {
        sent.add(f.proto.name);
        out.push(index.encode(f));
      }
      queue.push(...f.dependencies.filter((d) => !sent.has(d.proto.name)));
    }
    return create(ServerReflectionResponseSchema, { ...base, messageResponse: { case: "fileDescriptorResponse", value: { fileDescriptorProto: out } } });
  };
  const m = req.messageRequest;
  switch (m.case) {
    case "listServices":
      return create(ServerReflectionResponseSchema, {
        ...base,
        messageResponse: { case: "listServicesResponse", value: { service: index.serviceNames.map((name) => ({ name })) } },
      });
    case "fileByFilename":
      return files(index.fileByName(m.value), `file ${JSON.stringify(m.value)}`);
    case "fileContainingSymbol":
      return files(index.fileContainingSymbol(m.value), `symbol ${JSON.stringify(m.value)}`);
    case "fileContainingExtension":
      return files(
        index.fileContainingExtension(m.value.containingType, m.value.extensionNumber),
        `extension ${m.value.extensionNumber} of ${JSON.stringify(m.value.containingType)}`,
      );
    case "allExtensionNumbersOfType": {
      const numbers = index.extensionNumbersOf(m.value);
      if (!numbers) return fail(NOT_FOUND, `type ${JSON.stringify(m.value)} not found`);
      return create(ServerReflectionResponseSchema, {
        ...base,
        messageResponse: { case: "allExtensionNumbersResponse", value: { baseTypeName: m.value.replace(/^\./, ""), extensionNumber: numbers } },
      });
    }
    default:
      return fail(INVALID_ARGUMENT, "the request names no reflection query");
  }
}

/** grpc.reflection.v1.ServerReflection. */
export function reflectionV1Impl(index: DescriptorIndex): ServiceImpl<typeof ServerReflection> {
  return {
    async *serverReflectionInfo(requests: AsyncIterable<ServerReflectionRequest>) {
      const sent = new Set<string>();
      for await (const req of requests) yield answerReflection(index, req, sent);
    },
  };
}

/** grpc.reflection.v1alpha.ServerReflection: the same messages on the wire, under the older package name. */
export function reflectionV1AlphaImpl(index: DescriptorIndex): ServiceImpl<typeof ServerReflectionV1Alpha> {
  return {
    async *serverReflectionInfo(requests: AsyncIterable<V1AlphaRequest>) {
      const sent = new Set<string>();
      for await (const req of requests) {
        const v1 = fromBinary(ServerReflectionRequestSchema, toBinary(V1AlphaRequestSchema, req));
        yield fromBinary(V1AlphaResponseSchema, toBinary(ServerReflectionResponseSchema, answerReflection(index, v1, sent)));
      }
    },
  };
}
