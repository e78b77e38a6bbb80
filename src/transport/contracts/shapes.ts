// How each public contract shapes a REST answer: the success body built from
// the response message, and which error shape its failures take (the error
// writer builds those bodies from the one error table).
import { toJson, type DescMessage, type JsonObject, type Message } from "@bufbuild/protobuf";
import { ApiContract } from "../contract.js";
import { type ErrorShape, errorShapeOf } from "../error-writer.js";

export interface RestShape {
  success(schema: DescMessage, message: Message): unknown;
  readonly errors: ErrorShape;
}

/** Stytch: snake_case bodies with every field (an absent message as null). */
const stytch: RestShape = {
  success(schema, message) {
    const json = toJson(schema, message, { useProtoFieldName: true, alwaysEmitImplicit: true }) as JsonObject;
    for (const field of schema.fields) json[field.name] ??= null;
    return json;
  },
  errors: errorShapeOf(ApiContract.STYTCH),
};

/**
 * Legacy portal: the ActionConfirmation envelope, always all five keys, in
 * order, absent ones as explicit nulls.
 */
const legacy: RestShape = {
  success(schema, message) {
    const json = toJson(schema, message, { alwaysEmitImplicit: true }) as JsonObject;
    const out: JsonObject = {};
    for (const field of schema.fields) out[field.jsonName] = json[field.jsonName] ?? null;
    return out;
  },
  errors: errorShapeOf(ApiContract.LEGACY),
};

/** The admin API: snake_case bodies with every field. */
const admin: RestShape = {
  success: (schema, message) => toJson(schema, message, { useProtoFieldName: true, alwaysEmitImplicit: true }),
  errors: errorShapeOf(ApiContract.ADMIN),
};

/** Routes with no contract. */
const plain: RestShape = {
  success: (schema, message) => toJson(schema, message),
  errors: errorShapeOf(ApiContract.UNSPECIFIED),
};

export function shapeFor(contract: ApiContract): RestShape {
  switch (contract) {
    case ApiContract.STYTCH:
    case ApiContract.STYTCH_PUBLIC:
      return stytch;
    case ApiContract.LEGACY:
      return legacy;
    case ApiContract.ADMIN:
      return admin;
    default:
      return plain;
  }
}
