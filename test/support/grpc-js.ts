// A @grpc/grpc-js client for any service generated into gen/, with
// protobuf-es doing the (de)serialization: the stock Node gRPC client as
// platform tools and other teams' services use it.
import { fromBinary, toBinary, type DescService } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";

// biome-ignore lint/suspicious/noExplicitAny: grpc-js makes its methods at run time, one per RPC
export type GrpcJsClient = grpc.Client & Record<string, any>;

export function grpcJsClient(service: DescService, baseUrl: string): GrpcJsClient {
  const definition: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const m of service.methods) {
    definition[m.localName] = {
      path: `/${service.typeName}/${m.name}`,
      requestStream: m.methodKind === "client_streaming" || m.methodKind === "bidi_streaming",
      responseStream: m.methodKind === "server_streaming" || m.methodKind === "bidi_streaming",
      requestSerialize: (value: unknown) => Buffer.from(toBinary(m.input, value as never)),
      requestDeserialize: (bytes: Buffer) => fromBinary(m.input, bytes),
      responseSerialize: (value: unknown) => Buffer.from(toBinary(m.output, value as never)),
      responseDeserialize: (bytes: Buffer) => fromBinary(m.output, bytes),
    };
  }
  const Client = grpc.makeGenericClientConstructor(definition, service.name);
  return new Client(new URL(baseUrl).host, grpc.credentials.createInsecure()) as GrpcJsClient;
}

/** A unary call as a promise; rejects with the grpc-js ServiceError. */
export function unary<T>(client: GrpcJsClient, method: string, request: unknown, options: grpc.CallOptions = {}, metadata = new grpc.Metadata()): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    client[method](request, metadata, options, (err: grpc.ServiceError | null, res: T) => (err ? reject(err) : resolve(res)));
  });
}
