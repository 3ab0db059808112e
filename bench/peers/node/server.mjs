// The Node peer for agui-server's benchmark (bench/README.md).
//
// node:http, the input parsed with @ag-ui/core's RunAgentInputSchema (zod), events encoded by
// @ag-ui/encoder's EventEncoder (`data: <json>\n\n` for `Accept: text/event-stream`), written with
// `drain` backpressure; RS256 bearer tokens verified with jose against the benchmark's JWKS file.
// This is how the reference peer in shared/reference/perf-peers.md §1 is built.
//
// The reply is scripted exactly like agui-server's `/stream <n> [size] [delay_ms]`: RUN_STARTED,
// TEXT_MESSAGE_START, n × TEXT_MESSAGE_CONTENT (delta i = `size` bytes of 'a' + i % 26, a pause
// of delay_ms before each), TEXT_MESSAGE_END, RUN_FINISHED.
//
// Environment: PORT, JWKS_FILE, ISSUER, AUDIENCE. Listens on 127.0.0.1 only, backlog 4096 (Node's
// default is 511, which drops SYNs in a 1,000-connection burst: perf-peers.md §3).

import http from "node:http";
import { readFileSync } from "node:fs";
import { randomUUID } from "node:crypto";
import { EventType, PROTOCOL_VERSION } from "@ag-ui/core";
import { RunAgentInputSchema } from "@ag-ui/core/schemas";
import { EventEncoder } from "@ag-ui/encoder";
import { createLocalJWKSet, jwtVerify } from "jose";

const port = Number(process.env.PORT ?? "8002");
const issuer = process.env.ISSUER;
const audience = process.env.AUDIENCE;
const jwks = createLocalJWKSet(JSON.parse(readFileSync(process.env.JWKS_FILE, "utf8")));
const MAX_BODY = 8 * 1024 * 1024;

/** Parses `/stream <n> [size] [delay_ms]` the way agui-server's scripted model does. */
function plan(input) {
  const last = [...input.messages].reverse().find((m) => m.role === "user");
  const text = typeof last?.content === "string" ? last.content.trim() : "";
  const numbers = text.startsWith("/stream") ? text.slice(7).trim().split(/\s+/).map(Number) : [];
  const ok = (v, d) => (Number.isFinite(v) && v >= 0 ? v : d);
  return {
    count: Math.min(ok(numbers[0], 1), 1_000_000),
    size: Math.min(Math.max(ok(numbers[1], 16), 1), 65_536),
    delay: Math.min(ok(numbers[2], 0), 60_000),
  };
}

function fail(res, status, error) {
  const body = JSON.stringify({ error });
  const headers = { "content-type": "application/json", "content-length": Buffer.byteLength(body) };
  if (status === 401) headers["www-authenticate"] = 'Bearer realm="agui"';
  res.writeHead(status, headers);
  res.end(body);
}

async function authenticate(req) {
  const header = req.headers.authorization ?? "";
  if (!header.startsWith("Bearer ")) return false;
  try {
    await jwtVerify(header.slice(7), jwks, { issuer, audience, algorithms: ["RS256"] });
    return true;
  } catch {
    return false;
  }
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on("data", (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY) reject(new Error("too large"));
      else chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Writes one frame, waiting for `drain` when the socket buffer is full. */
function write(res, frame) {
  if (res.write(frame)) return Promise.resolve();
  return new Promise((resolve) => res.once("drain", resolve));
}

async function chat(req, res) {
  if (!(await authenticate(req))) return fail(res, 401, "invalid_token");
  let input;
  try {
    input = RunAgentInputSchema.parse(JSON.parse(await readBody(req)));
  } catch {
    return fail(res, 422, "invalid_input");
  }
  const { count, size, delay } = plan(input);
  const encoder = new EventEncoder({ accept: req.headers.accept });
  res.writeHead(200, { "content-type": encoder.getContentType(), "cache-control": "no-cache" });
  let gone = false;
  res.on("close", () => (gone = true));
  const messageId = randomUUID();
  const { threadId, runId } = input;
  await write(res, encoder.encode({ type: EventType.RUN_STARTED, threadId, runId, protocolVersion: PROTOCOL_VERSION }));
  await write(res, encoder.encode({ type: EventType.TEXT_MESSAGE_START, messageId, role: "assistant" }));
  for (let i = 0; i < count && !gone; i++) {
    if (delay > 0) await sleep(delay);
    const delta = String.fromCharCode(97 + (i % 26)).repeat(size);
    await write(res, encoder.encode({ type: EventType.TEXT_MESSAGE_CONTENT, messageId, delta }));
  }
  await write(res, encoder.encode({ type: EventType.TEXT_MESSAGE_END, messageId }));
  await write(res, encoder.encode({ type: EventType.RUN_FINISHED, threadId, runId }));
  res.end();
}

const server = http.createServer((req, res) => {
  if (req.method === "POST" && req.url.split("?")[0] === "/chat") {
    chat(req, res).catch(() => res.destroy());
  } else if (req.method === "GET" && req.url === "/healthz") {
    res.end("ok");
  } else {
    fail(res, 404, "not_found");
  }
});
// No idle/request timeouts beyond Node's defaults; keep-alive like the other servers.
server.listen(port, "127.0.0.1", 4096, () => {
  process.stderr.write(`listening on http://127.0.0.1:${port}\n`);
});
