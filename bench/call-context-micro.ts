// A unary call's context on its own: connect-es's createHandlerContext (with
// the request signal the REST routes and the unary shortcut linked into it)
// against src/transport/call-context.ts, each built as those callers build
// it and aborted at the call's end as the shortcut does. CPU per call, no I/O.
// Run: `npx tsx bench/call-context-micro.ts` (CONTEXT_CALLS, CONTEXT_ROUNDS).
import { Code, ConnectError, createHandlerContext } from "@connectrpc/connect";
import { OtpService } from "../gen/otp/v1/otp_service_pb.js";
import { createCallContext } from "../src/transport/call-context.js";

const calls = Number(process.env.CONTEXT_CALLS ?? 200_000);
const rounds = Number(process.env.CONTEXT_ROUNDS ?? 3);
const CALL_OVER = new ConnectError("call is over", Code.Canceled);
const base = {
  service: OtpService,
  method: OtpService.method.loginOrCreateEmailOtp,
  protocolName: "grpc",
  requestMethod: "POST",
  url: "http://127.0.0.1/otp.v1.OtpService/LoginOrCreateEmailOtp",
};
const requestHeader = () => new Headers({ "content-type": "application/grpc", te: "trailers", "user-agent": "h2gen" });

const variants = {
  createHandlerContext: () => {
    const request = new AbortController();
    const ctx = createHandlerContext({
      ...base,
      requestHeader: requestHeader(),
      requestSignal: request.signal,
      responseHeader: { "content-type": "application/grpc+proto" },
      responseTrailer: { "grpc-status": "0" },
    });
    ctx.abort(CALL_OVER);
  },
  createCallContext: () => {
    const ctx = createCallContext({
      ...base,
      requestHeader: requestHeader(),
      responseHeader: new Headers({ "content-type": "application/grpc+proto" }),
      responseTrailer: new Headers({ "grpc-status": "0" }),
    });
    ctx.abort(CALL_OVER);
  },
};

for (let round = 1; round <= rounds; round++) {
  for (const [name, call] of Object.entries(variants)) {
    for (let i = 0; i < calls / 10; i++) call();
    const start = process.hrtime.bigint();
    for (let i = 0; i < calls; i++) call();
    const us = Number(process.hrtime.bigint() - start) / calls / 1000;
    console.log(`round ${round}: ${name} ${us.toFixed(2)} µs per call`);
  }
}
