// A mock OpenAI-compatible chat-completions server for the conformance suite: proves nothing by
// itself; it stands in for the model behind a second agui-server (AGUI_MODEL=openai), replays the
// provider's chunk fixtures (server/agent/tests/fixtures/openai/*.sse, read in place, never copied)
// and records every request it receives, so the scenarios can judge both what the official client
// saw and what agui-server sent upstream.
//
// POST <base>/chat/completions: the reply is chosen by a marker in the latest user message,
// `[mock:<script>]` or `[mock:<script>#<nonce>]` (see SCRIPTS). Each distinct marker (script and
// nonce) counts its own attempts, so "429, then success" is deterministic per scenario run.
// GET /__requests: every request so far, in arrival order, as JSON
// `[{seq, method, path, headers, body, marker, reply}]` (`body` parsed when it is JSON).
//
// Only node:* modules; binds 127.0.0.1. `node mock-openai.mjs [--port N]` runs it alone and prints
// `{"url": ..., "base": ...}` on stdout.

import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
// Native fetch, captured before anything could wrap it.
const nativeFetch = globalThis.fetch;

/** Where the provider's chunk fixtures live (owned by the agent crate's tests). */
export const FIXTURES_DIR = resolve(here, '../../server/agent/tests/fixtures/openai');

/** The path prefix the mock serves the API under; agui-server's OPENAI_BASE_URL is `<url>/v1`. */
export const API_PREFIX = '/v1';

/** Bodies larger than this are refused (413): every load here is bounded. */
const MAX_REQUEST_BYTES = 1024 * 1024;
/** Requests kept for /__requests; the suites send a few dozen. */
const MAX_RECORDED = 2_000;

const MARKER = /\[mock:([a-z_]+)(?:#([A-Za-z0-9_-]+))?\]/;

/** An OpenAI-style error body (OpenAI API reference, "Error codes"). */
function errorBody(message, type, code) {
  return JSON.stringify({ error: { message, type, param: null, code } });
}

/**
 * The replies, by script name. `reply(attempt, request)` gets the 0-based attempt count of this
 * marker and the parsed request body, and returns one of
 * `{fixture, rename?}` (replay a fixture; `rename` maps tool names in its chunks) or
 * `{status, headers?, body}` (an HTTP error).
 */
export const SCRIPTS = Object.freeze({
  plain_text: { reply: () => ({ fixture: 'plain_text.sse' }) },
  usage_only_final_chunk: { reply: () => ({ fixture: 'usage_only_final_chunk.sse' }) },
  reasoning_content: { reply: () => ({ fixture: 'reasoning_content.sse' }) },
  tool_call_split: { reply: () => ({ fixture: 'tool_call_split.sse' }) },
  tool_call_whole: { reply: () => ({ fixture: 'tool_call_whole.sse' }) },
  no_done: { reply: () => ({ fixture: 'no_done.sse' }) },
  // Parallel calls (two get_weather for the client, whoami for the server); once the history
  // ends with tool results (the app answered the client's calls), a text answer.
  tool_calls_parallel_interleaved: {
    reply: (attempt, request) =>
      lastRole(request) === 'tool' ? { fixture: 'plain_text.sse' } : { fixture: 'tool_calls_parallel_interleaved.sse' },
  },
  // The backend round trip: text, then a whoami call ending with finish_reason "stop" (the
  // tool_calls_then_stop fixture with its call renamed to the server's whoami tool); the turn
  // that carries the tool result gets a text answer.
  whoami: {
    reply: (attempt, request) =>
      lastRole(request) === 'tool'
        ? { fixture: 'plain_text.sse' }
        : { fixture: 'tool_calls_then_stop.sse', rename: { list_my_documents: 'whoami' } },
  },
  rate_limited_once: {
    reply: (attempt) =>
      attempt === 0
        ? { status: 429, headers: { 'retry-after': '0' }, body: errorBody('Rate limit reached (mock)', 'requests', 'rate_limit_exceeded') }
        : { fixture: 'plain_text.sse' },
  },
  server_error: {
    reply: () => ({ status: 500, headers: { 'retry-after': '0' }, body: errorBody('The server had an error (mock upstream detail)', 'server_error', null) }),
  },
  unauthorized: {
    reply: () => ({ status: 401, body: errorBody('Incorrect API key provided (mock upstream detail)', 'invalid_request_error', 'invalid_api_key') }),
  },
});

function lastRole(request) {
  return Array.isArray(request?.messages) ? request.messages.at(-1)?.role : undefined;
}

/** The text of the latest user message (a string, or the text parts of a part list). */
function latestUserText(request) {
  if (!Array.isArray(request?.messages)) return '';
  const user = request.messages.findLast((m) => m?.role === 'user');
  if (!user) return '';
  if (typeof user.content === 'string') return user.content;
  if (Array.isArray(user.content)) return user.content.filter((p) => p?.type === 'text').map((p) => p.text).join('');
  return '';
}

/**
 * A fixture's SSE events (split on blank lines, as written), with tool names renamed in its
 * `data:` JSON when asked. Comment events are kept: replaying them exercises comment handling.
 *
 * @param {string} name file in FIXTURES_DIR
 * @param {Record<string, string>} [rename] tool name → replacement
 * @returns {string[]} one string per SSE event, each ending with a blank line
 */
export function fixtureEvents(name, rename = {}) {
  const text = readFileSync(join(FIXTURES_DIR, name), 'utf8');
  const events = text.split(/\n\n+/).filter((e) => e.trim() !== '');
  return events.map((event) => {
    const lines = event.split('\n').map((line) => {
      if (!line.startsWith('data: ') || line === 'data: [DONE]' || Object.keys(rename).length === 0) return line;
      let chunk;
      try {
        chunk = JSON.parse(line.slice('data: '.length));
      } catch {
        return line; // a deliberately broken fixture stays broken
      }
      for (const choice of chunk.choices ?? []) {
        for (const call of choice.delta?.tool_calls ?? []) {
          const renamed = rename[call.function?.name];
          if (renamed) call.function.name = renamed;
        }
      }
      return `data: ${JSON.stringify(chunk)}`;
    });
    return `${lines.join('\n')}\n\n`;
  });
}

/**
 * Starts the mock on 127.0.0.1.
 *
 * @param {{port?: number}} [options]
 * @returns {Promise<{url: string, base: string, requests: object[], close: () => Promise<void>}>}
 *   `url` is the mock's root (control endpoints), `base` what OPENAI_BASE_URL should be.
 */
export async function startMockOpenAi({ port = 0 } = {}) {
  const requests = [];
  const attempts = new Map();
  const server = createServer((req, res) => {
    handle(req, res).catch((error) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(errorBody(`mock failure: ${error.message}`, 'mock_error', null));
    });
  });

  async function handle(req, res) {
    const path = new URL(req.url, 'http://mock').pathname;
    if (req.method === 'GET' && path === '/__requests') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(requests));
      return;
    }
    const raw = await readBody(req);
    if (raw === undefined) {
      res.writeHead(413, { 'content-type': 'application/json' });
      res.end(errorBody('request too large', 'invalid_request_error', null));
      return;
    }
    let body = raw;
    try {
      body = JSON.parse(raw);
    } catch {
      // recorded as text
    }
    const record = { seq: requests.length, method: req.method, path, headers: { ...req.headers }, body, marker: undefined, reply: undefined };
    if (requests.length < MAX_RECORDED) requests.push(record);

    if (req.method !== 'POST' || path !== `${API_PREFIX}/chat/completions`) {
      record.reply = 'not found';
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(errorBody(`no route ${req.method} ${path}`, 'invalid_request_error', null));
      return;
    }
    const match = typeof body === 'object' && body !== null ? MARKER.exec(latestUserText(body)) : null;
    const script = match ? SCRIPTS[match[1]] : undefined;
    if (!script) {
      record.reply = 'no script';
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(errorBody('no [mock:<script>] marker with a known script in the latest user message', 'invalid_request_error', null));
      return;
    }
    record.marker = match[0];
    const attempt = attempts.get(match[0]) ?? 0;
    attempts.set(match[0], attempt + 1);
    const reply = script.reply(attempt, body);
    if (reply.status) {
      record.reply = `HTTP ${reply.status}`;
      res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers });
      res.end(reply.body);
      return;
    }
    record.reply = reply.fixture;
    const events = fixtureEvents(reply.fixture, reply.rename);
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    // One write per event; the body ends exactly where the fixture does (no_done.sse has no [DONE]).
    for (const event of events) res.write(event);
    res.end();
  }

  await new Promise((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolveListen);
  });
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    url,
    base: `${url}${API_PREFIX}`,
    requests,
    close: () =>
      new Promise((resolveClose) => {
        server.closeAllConnections?.();
        server.close(() => resolveClose());
      }),
  };
}

/** The request body as text, or `undefined` when it exceeds MAX_REQUEST_BYTES. */
function readBody(req) {
  return new Promise((resolveBody, reject) => {
    const chunks = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_REQUEST_BYTES) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on('end', () => resolveBody(tooLarge ? undefined : Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/**
 * Fetches the mock's recorded requests (for the suites, which run in other processes).
 *
 * @param {string} mockUrl the mock's root URL
 * @returns {Promise<object[]>}
 */
export async function fetchRecordedRequests(mockUrl) {
  const response = await nativeFetch(`${mockUrl}/__requests`);
  if (response.status !== 200) throw new Error(`GET /__requests: HTTP ${response.status}`);
  return response.json();
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const at = process.argv.indexOf('--port');
  const mock = await startMockOpenAi({ port: at > 0 ? Number(process.argv[at + 1]) : 0 });
  process.stdout.write(`${JSON.stringify({ url: mock.url, base: mock.base })}\n`);
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => mock.close().then(() => process.exit(0)));
}
