// Reads what the proto declares about each RPC: its REST route
// (google.api.http) and the public contract it honours (otp.v1.contract).
import { getOption, hasOption, type DescMethod } from "@bufbuild/protobuf";
import { http } from "../../gen/google/api/annotations_pb.js";
import { ApiContract, contract } from "../../gen/otp/v1/options_pb.js";

export { ApiContract };

const contracts = new WeakMap<DescMethod, ApiContract>();

export function contractOf(method: DescMethod): ApiContract {
  let c = contracts.get(method);
  if (c === undefined) {
    c = getOption(method, contract);
    contracts.set(method, c);
  }
  return c;
}

export interface HttpBinding {
  readonly verb: "GET" | "POST" | "PUT" | "DELETE" | "PATCH";
  readonly path: string;
  /** "*" maps the whole JSON body onto the request; "" means no body. */
  readonly body: string;
}

export function httpBindingOf(method: DescMethod): HttpBinding | undefined {
  if (!hasOption(method, http)) return undefined;
  const rule = getOption(method, http);
  const { pattern } = rule;
  switch (pattern.case) {
    case "get":
    case "post":
    case "put":
    case "delete":
    case "patch":
      return { verb: pattern.case.toUpperCase() as HttpBinding["verb"], path: pattern.value, body: rule.body };
    default:
      throw new Error(`${method.parent.typeName}.${method.name}: unsupported google.api.http pattern`);
  }
}
