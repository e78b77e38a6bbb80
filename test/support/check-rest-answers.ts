// Set up for every test file: each answer fetch() gets from a REST route
// documented in docs/openapi.json is validated against the document before
// the test sees it, so every REST answer of every test is checked (a
// mismatch fails the fetch, naming the route and the schema errors).
import { checkRestAnswer } from "./openapi.js";

const realFetch = globalThis.fetch;

globalThis.fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
  const res = await realFetch(input, init);
  const method = (init?.method ?? (input instanceof Request ? input.method : "GET")).toUpperCase();
  if (method === "HEAD" || method === "OPTIONS" || res.status === 204 || !res.url) return res;
  const text = await res.clone().text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  checkRestAnswer(res.url, res.status, body, text);
  return res;
};
