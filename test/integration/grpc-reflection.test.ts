// gRPC server reflection as the tools use it: `buf curl` with no --schema
// lists the services and methods and calls RPCs with nothing but what the
// server describes (over v1, and over v1alpha as older tools speak it); a
// raw @grpc/grpc-js stream checks the answers' descriptors themselves.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ServerReflection,
  ServerReflectionRequestSchema,
  type ServerReflectionResponse,
  ServerReflectionResponseSchema,
} from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { startTestEnv, type TestEnv } from "../support/app.js";
import { bufCurl } from "../support/buf-curl.js";
import { grpcJsClient } from "../support/grpc-js.js";

let env: TestEnv;

beforeAll(async () => {
  env = await startTestEnv();
});

afterAll(async () => {
  await env?.close();
});

const SERVICES = [
  "grpc.health.v1.Health",
  "grpc.reflection.v1.ServerReflection",
  "grpc.reflection.v1alpha.ServerReflection",
  "otp.v1.AdminService",
  "otp.v1.OtpService",
  "otp.v1.SessionService",
];

describe("buf curl without --schema", () => {
  it("lists every service served", async () => {
    const r = await bufCurl(["--list-services", env.url]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split("\n").sort()).toEqual(SERVICES);
  });

  it("lists the methods, over v1 and over v1alpha", async () => {
    for (const protocol of ["grpc-v1", "grpc-v1alpha"]) {
      const r = await bufCurl(["--reflect-protocol", protocol, "--list-methods", env.url]);
      expect(r.code, r.stderr).toBe(0);
      const methods = r.stdout.trim().split("\n");
      expect(methods).toContain("otp.v1.OtpService/SendEmailOtp");
      expect(methods).toContain("otp.v1.SessionService/GetJwks");
      expect(methods).toContain("otp.v1.AdminService/CreateProject");
      expect(methods).toContain("grpc.health.v1.Health/Watch");
      expect(methods).toContain("grpc.reflection.v1.ServerReflection/ServerReflectionInfo");
    }
  });

  it("calls an RPC, encoding the request and decoding the answer from the reflected schema", async () => {
    const address = `reflect-${Date.now()}@example.com`;
    const r = await bufCurl([
      "-H", `Authorization: ${env.project.authorization}`,
      "-d", JSON.stringify({ email: address, expiration_minutes: 5 }),
      `${env.url}/otp.v1.OtpService/LoginOrCreateEmailOtp`,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const body = JSON.parse(r.stdout);
    expect(body.statusCode).toBe(200);
    expect(body.emailId).toMatch(/^email-test-/);
  });

  it("is refused when reflection is turned off (GRPC_REFLECTION=false)", async () => {
    const off = await env.startInstance({ GRPC_REFLECTION: "false" });
    const r = await bufCurl(["--list-services", off.url]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/unimplemented/i);
    await off.app.close();
  });
});

describe("ServerReflectionInfo over @grpc/grpc-js", () => {
  /** Sends the requests on one stream and collects the answers. */
  async function reflect(requests: Parameters<typeof create<typeof ServerReflectionRequestSchema>>[1][]): Promise<ServerReflectionResponse[]> {
    const client = grpcJsClient(ServerReflection, env.url);
    const call = client.serverReflectionInfo() as grpc.ClientDuplexStream<unknown, ServerReflectionResponse>;
    const answers: ServerReflectionResponse[] = [];
    const done = new Promise<void>((resolve, reject) => {
      call.on("data", (a: ServerReflectionResponse) => answers.push(a));
      call.on("end", () => resolve());
      call.on("error", reject);
    });
    for (const r of requests) call.write(create(ServerReflectionRequestSchema, r));
    call.end();
    await done;
    client.close();
    return answers;
  }
  const filesOf = (a: ServerReflectionResponse) =>
    a.messageResponse.case === "fileDescriptorResponse" ? a.messageResponse.value.fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b)) : [];

  it("answers a symbol with its file and imports once per stream, and a missing one with NOT_FOUND", async () => {
    const [bySymbol, byMethod, byName, missing] = await reflect([
      { messageRequest: { case: "fileContainingSymbol", value: "otp.v1.OtpService" } },
      { messageRequest: { case: "fileContainingSymbol", value: "otp.v1.SessionService.GetJwks" } },
      { messageRequest: { case: "fileByFilename", value: "google/api/annotations.proto" } },
      { messageRequest: { case: "fileContainingSymbol", value: "otp.v1.Nope" } },
    ]);
    const first = filesOf(bySymbol!);
    expect(first[0]!.name).toBe("otp/v1/otp_service.proto");
    expect(first[0]!.service.map((s) => s.name)).toEqual(expect.arrayContaining(["OtpService", "SessionService"]));
    const names = first.map((f) => f.name);
    expect(names).toEqual(expect.arrayContaining(["google/api/annotations.proto", "google/protobuf/descriptor.proto"]));
    // Already sent on this stream: only the file asked for comes again.
    expect(filesOf(byMethod!).map((f) => f.name)).toEqual(["otp/v1/otp_service.proto"]);
    expect(filesOf(byName!).map((f) => f.name)).toEqual(["google/api/annotations.proto"]);
    expect(missing!.messageResponse.case).toBe("errorResponse");
    expect(missing!.messageResponse.value).toMatchObject({ errorCode: grpc.status.NOT_FOUND });
  });

  it("answers a name longer than any the schema has with a short INVALID_ARGUMENT, not an echo many times its size", async () => {
    const long = "\x01".repeat(30_000);
    const answers = await reflect([
      { messageRequest: { case: "fileContainingSymbol", value: long } },
      { messageRequest: { case: "fileByFilename", value: long } },
      { messageRequest: { case: "allExtensionNumbersOfType", value: long } },
      { messageRequest: { case: "fileContainingExtension", value: { containingType: long, extensionNumber: 1 } } },
      { host: long, messageRequest: { case: "listServices", value: "" } },
    ]);
    expect(answers).toHaveLength(5);
    for (const a of answers) {
      expect(a.messageResponse.case).toBe("errorResponse");
      expect(a.messageResponse.value).toMatchObject({ errorCode: grpc.status.INVALID_ARGUMENT });
      // Was: the request echoed (30 KB) and the name quoted again in the message (JSON-escaped, 180 KB).
      expect(toBinary(ServerReflectionResponseSchema, a).length).toBeLessThan(2_000);
    }
  });

  it("knows the extensions the schema declares (google.api.http on MethodOptions)", async () => {
    const [numbers, ext] = await reflect([
      { messageRequest: { case: "allExtensionNumbersOfType", value: "google.protobuf.MethodOptions" } },
      { messageRequest: { case: "fileContainingExtension", value: { containingType: "google.protobuf.MethodOptions", extensionNumber: 72295728 } } },
    ]);
    expect(numbers!.messageResponse.case).toBe("allExtensionNumbersResponse");
    expect((numbers!.messageResponse.value as { extensionNumber: number[] }).extensionNumber).toContain(72295728);
    expect(filesOf(ext!)[0]!.name).toBe("google/api/annotations.proto");
  });
});
