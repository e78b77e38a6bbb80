// How each public contract shapes a REST answer: the success body built from
// the response message, and the error body built from a Failure. The HTTP
// status and wording come from the one error mapping.
import { toJson, type DescMessage, type JsonObject, type Message } from "@bufbuild/protobuf";
import { ApiContract } from "../contract.js";
import { connectCodeName, describeViolations, ERROR_MAP, type Failure } from "../error-mapping.js";

export interface RestShape {
  success(schema: DescMessage, message: Message): unknown;
  failure(failure: Failure, requestId: string): { status: number; body: unknown };
}

/**
 * Stytch: snake_case bodies with every field (an absent message as null);
 * the documented error object.
 */
const stytch: RestShape = {
  success(schema, message) {
    const json = toJson(schema, message, { useProtoFieldName: true, alwaysEmitImplicit: true }) as JsonObject;
    for (const field of schema.fields) json[field.name] ??= null;
    return json;
  },
  failure(failure, requestId) {
    const mapping = ERROR_MAP[failure.reason];
    return {
      status: mapping.http,
      body: {
        status_code: mapping.http,
        request_id: requestId,
        error_type: mapping.stytch,
        error_message: failure.violations.length > 0 ? describeViolations(failure.violations, "proto") : failure.message,
        error_url: `https://stytch.com/docs/api/errors/${mapping.http}#${mapping.stytch}`,
      },
    };
  },
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
  failure(failure) {
    const mapping = ERROR_MAP[failure.reason];
    let errors: Record<string, string[]> | null = null;
    for (const v of failure.violations) {
      errors ??= {};
      errors[v.jsonField] ??= [];
      errors[v.jsonField].push(`${v.jsonField} ${v.description}`);
    }
    return {
      status: mapping.http,
      body: { WasSuccessful: false, Value: null, Status: mapping.http, Message: mapping.legacy, Errors: errors },
    };
  },
};

/** The admin API: snake_case bodies with every field; Connect-style errors. */
const admin: RestShape = {
  success: (schema, message) => toJson(schema, message, { useProtoFieldName: true, alwaysEmitImplicit: true }),
  failure: (failure, requestId) => plain.failure(failure, requestId),
};

/** Routes with no contract (and unknown paths): a Connect error object, with Connect's code names. */
const plain: RestShape = {
  success: (schema, message) => toJson(schema, message),
  failure(failure) {
    const mapping = ERROR_MAP[failure.reason];
    return { status: mapping.http, body: { code: connectCodeName(mapping.code), message: failure.message } };
  },
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
