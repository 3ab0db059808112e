// Wire-level helpers shared by both conformance suites: proves nothing by itself; it records the
// exact bytes agui-server sent (a fetch wrapper that tees the body), parses them as the AG-UI
// HTTP+SSE binding requires (agui-1.0.md §3.2: `data: <one-line JSON>\n\n`, LF only) and as the
// protobuf binding frames them (§3.4: 4-byte big-endian length + message), captures what the
// client printed, normalises run-specific ids, and prints `ok - ` / `not ok - ` lines.
// It imports no @ag-ui package: the v1 and v0 trees each bring their own.

import { inspect, isDeepStrictEqual } from 'node:util';

/** The AG-UI protobuf media type (agui-1.0.md §3.4). */
export const PROTO_MEDIA_TYPE = 'application/vnd.ag-ui.event+proto';

/**
 * A fetch for `HttpAgent({fetch})` that records every exchange: request body, status, headers,
 * and the complete raw response body (read from a tee, so the client still streams its half).
 *
 * @param {typeof fetch} [inner] the fetch to wrap
 * @returns {{fetch: (url: string, init: RequestInit) => Promise<Response>, exchanges: object[]}}
 */
export function recordingFetch(inner = globalThis.fetch) {
  const exchanges = [];
  const wrapped = async (url, init = {}) => {
    const exchange = { url: String(url), request: init, body: undefined, done: undefined };
    exchanges.push(exchange);
    const response = await inner(url, init);
    exchange.status = response.status;
    exchange.headers = response.headers;
    if (!response.body) {
      exchange.done = Promise.resolve(new Uint8Array());
      return response;
    }
    const [forClient, forUs] = response.body.tee();
    exchange.done = new Response(forUs).arrayBuffer().then((buffer) => {
      exchange.body = new Uint8Array(buffer);
      return exchange.body;
    });
    return new Response(forClient, { status: response.status, statusText: response.statusText, headers: response.headers });
  };
  return { fetch: wrapped, exchanges };
}

/**
 * Splits an SSE body into events, checking the framing agui-server promises: LF only, every frame
 * one `data: ` line holding one JSON object, optional `:` comment frames (keep-alives), and a
 * final `\n\n` (a producer closes the body after the terminal event).
 *
 * @param {Uint8Array|string} body the raw response body
 * @returns {object[]} the events, in order
 * @throws {Error} on any framing violation
 */
export function parseSse(body) {
  const text = typeof body === 'string' ? body : new TextDecoder('utf-8', { fatal: true }).decode(body);
  if (text.includes('\r')) throw new Error('SSE body contains CR; AG-UI requires LF line endings');
  if (text.length === 0) throw new Error('empty SSE body');
  if (!text.endsWith('\n\n')) throw new Error('SSE body does not end with a blank line (truncated frame)');
  const events = [];
  for (const frame of text.slice(0, -2).split('\n\n')) {
    const lines = frame.split('\n');
    if (lines.every((line) => line.startsWith(':'))) continue; // comment-only frame (keep-alive)
    if (lines.length !== 1 || !lines[0].startsWith('data: ')) {
      throw new Error(`unexpected SSE frame ${JSON.stringify(frame.slice(0, 120))}`);
    }
    const event = JSON.parse(lines[0].slice('data: '.length));
    if (typeof event !== 'object' || event === null || Array.isArray(event) || typeof event.type !== 'string') {
      throw new Error(`SSE data is not an event object: ${lines[0].slice(0, 120)}`);
    }
    events.push(event);
  }
  return events;
}

/**
 * Splits a protobuf body into frames: `[u32 big-endian length][message]`, nothing trailing.
 *
 * @param {Uint8Array} body the raw response body
 * @returns {Uint8Array[]} one message per frame
 * @throws {Error} on a truncated frame
 */
export function splitProtoFrames(body) {
  const frames = [];
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  let at = 0;
  while (at < body.length) {
    if (at + 4 > body.length) throw new Error(`truncated length prefix at byte ${at}`);
    const length = view.getUint32(at, false);
    at += 4;
    if (at + length > body.length) throw new Error(`truncated frame at byte ${at}: wants ${length} bytes`);
    frames.push(body.subarray(at, at + length));
    at += length;
  }
  return frames;
}

/**
 * Replaces run-specific values (ids the server mints, timestamps) with stable placeholders, so two
 * runs of one scenario (say SSE and protobuf) can be compared. Ids are numbered by first use, so
 * the structure (which event refers to which message or call) is still compared.
 *
 * @param {object[]} events events of one run
 * @returns {object[]} normalised deep copies
 */
export function normaliseRun(events) {
  const names = new Map();
  const placeholder = (value, kind) => {
    if (!names.has(value)) names.set(value, `<${kind}#${names.size}>`);
    return names.get(value);
  };
  const idKeys = { messageId: 'id', toolCallId: 'id', parentMessageId: 'id', threadId: 'thread', runId: 'run' };
  const walk = (value) => {
    if (Array.isArray(value)) return value.map(walk);
    if (typeof value !== 'object' || value === null) return value;
    const out = {};
    for (const [key, inner] of Object.entries(value)) {
      if (key === 'timestamp') out[key] = '<timestamp>';
      else if (idKeys[key] && typeof inner === 'string') out[key] = placeholder(inner, idKeys[key]);
      else if (key === 'pendingToolCallIds' && Array.isArray(inner)) out[key] = inner.map((id) => placeholder(id, 'id'));
      else out[key] = walk(inner);
    }
    return out;
  };
  return events.map(walk);
}

/**
 * Checks that `parsed` (what a schema made of `raw`) kept every member of `raw` unchanged. The
 * schema may only ADD members listed in `allowedDefaults` (zod defaults, e.g. 0.0.59 fills
 * `TEXT_MESSAGE_START.role`).
 *
 * @param {object} raw the event as sent
 * @param {object} parsed the schema's output
 * @param {string[]} [allowedDefaults] top-level members the schema may add
 * @returns {string|undefined} a reason when something was stripped, changed or added
 */
export function schemaKeptEverything(raw, parsed, allowedDefaults = []) {
  for (const key of Object.keys(raw)) {
    if (!(key in parsed)) return `member '${key}' was stripped`;
    if (!isDeepStrictEqual(parsed[key], raw[key])) return `member '${key}' was changed`;
  }
  for (const key of Object.keys(parsed)) {
    if (!(key in raw) && !allowedDefaults.includes(key)) return `member '${key}' was added`;
  }
  return undefined;
}

/**
 * Collects console.warn / console.error output while `fn` runs (the AG-UI clients report stripped
 * members, failed patches and legacy translations through console.warn).
 *
 * @template T
 * @param {() => Promise<T>} fn the scenario step
 * @returns {Promise<{value?: T, error?: Error, printed: string[]}>}
 */
export async function withConsoleCapture(fn) {
  const printed = [];
  const { warn, error } = console;
  console.warn = (...args) => printed.push(`warn: ${args.map(String).join(' ')}`);
  console.error = (...args) => printed.push(`error: ${args.map(String).join(' ')}`);
  try {
    return { value: await fn(), printed };
  } catch (caught) {
    return { error: caught, printed };
  } finally {
    console.warn = warn;
    console.error = error;
  }
}

/**
 * A TAP-like reporter: `ok - name` / `not ok - name: reason`, with counts for the summary.
 *
 * @param {string} prefix prefixed to every test name (e.g. `v1`)
 */
export function reporter(prefix) {
  const counts = { passed: 0, failed: 0 };
  return {
    counts,
    /**
     * Runs one named test; any throw is a failure with its message as the reason.
     *
     * @param {string} name what the test proves
     * @param {() => Promise<void>} fn the test body
     */
    async test(name, fn) {
      const full = `${prefix}: ${name}`;
      try {
        await fn();
        counts.passed += 1;
        process.stdout.write(`ok - ${full}\n`);
      } catch (error) {
        counts.failed += 1;
        const reason = describeFailure(error).replace(/\s+/g, ' ').slice(0, 600);
        process.stdout.write(`not ok - ${full}: ${reason}\n`);
      }
    },
  };
}

// node:assert appends a multi-line diff to custom messages; one line with both values reads better.
function describeFailure(error) {
  if (error?.code !== 'ERR_ASSERTION') return String(error?.stack ?? error?.message ?? error).split('\n    at ')[0];
  const [first] = String(error.message).split('\n');
  if (error.operator === 'fail' || error.operator === '==' || error.generatedMessage === false && error.actual === undefined && error.expected === undefined) {
    return first;
  }
  const show = (value) => inspect(value, { depth: 4, breakLength: Infinity, maxStringLength: 200 });
  return `${first} (actual ${show(error.actual)}, expected ${show(error.expected)})`;
}
