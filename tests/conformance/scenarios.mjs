// The conformance scenarios, shared by both suites: proves that agui-server, driven by an official
// AG-UI client (1.0.0 or 0.0.59, injected through a driver), streams exactly the scripted model's
// contract (DESIGN "Interfaces") in that client's dialect (DESIGN "Two dialects"): the exact event
// sequence and terminal event of every run (a truncated stream resolves silently in the client, so
// "no error" proves nothing), every raw event kept intact by that version's schema and delivered
// unchanged by its client, no client warnings, and the HTTP errors of RFC 6750 and our API.
// It imports no @ag-ui package; everything version-specific comes from the driver.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';

import { decodeJwt, requestToken, TEST_CLIENTS } from '../idp/client.mjs';
import { normaliseRun, parseSse, schemaKeptEverything, splitProtoFrames } from './wire.mjs';

// Native fetch, captured before any suite could wrap it.
const nativeFetch = globalThis.fetch;

/** The frontend tool of scenario 4 (what a CopilotKit app registers with useFrontendTool). */
export const ACCENT_TOOL = Object.freeze({
  name: 'change_accent_color',
  description: 'Change the page accent colour',
  parameters: { type: 'object', properties: { color: { type: 'string' } }, required: ['color'] },
});

/**
 * Service clients this suite adds to the test IdP (run.mjs passes them with `--config`), for the
 * role-gated tools: `delete_document` requires the role `admin` (server/agent/src/tools), and
 * agui-server maps roles from the token's `roles` claim (its default `claims.roles = ["/roles"]`).
 * `adminTwin` has the same claims under its own subject, so it owns its own demo documents: the
 * protobuf replay of a successful delete runs as the twin (the admin's document is gone by then).
 */
export const ROLE_CLIENTS = Object.freeze({
  admin: Object.freeze({
    clientId: 'agui-conformance-admin',
    clientSecret: 'agui-conformance-admin-secret',
    claims: Object.freeze({ name: 'Grace Hopper', roles: Object.freeze(['admin']) }),
  }),
  adminTwin: Object.freeze({
    clientId: 'agui-conformance-admin-twin',
    clientSecret: 'agui-conformance-admin-twin-secret',
    claims: Object.freeze({ name: 'Grace Hopper', roles: Object.freeze(['admin']) }),
  }),
});

/** {@link ROLE_CLIENTS} as test-IdP client entries (tests/idp/config.mjs settings shape). */
export function roleClientSettings() {
  return Object.values(ROLE_CLIENTS).map(({ clientId, clientSecret, claims }) => ({
    client_id: clientId,
    client_secret: clientSecret,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    claims: { ...claims, roles: [...claims.roles] },
  }));
}

/**
 * Reads the suite's environment (set by run.mjs) and mints the extra tokens the scenarios need.
 *
 * @returns {Promise<object>} the context every scenario receives
 */
export async function suiteContext() {
  const env = (name) => {
    const value = process.env[name];
    if (!value) throw new Error(`${name} is not set (run the suites through tests/conformance/run.mjs)`);
    return value;
  };
  const idpUrl = env('AGUI_IDP_URL');
  const clientId = env('AGUI_CLIENT_ID');
  const clientSecret = env('AGUI_CLIENT_SECRET');
  const named = TEST_CLIENTS.named;
  return {
    url: env('AGUI_URL'),
    idpUrl,
    token: env('AGUI_TOKEN'),
    subject: env('AGUI_EXPECT_SUBJECT'),
    namedToken: await requestToken({ issuer: idpUrl, ...named, scope: 'agui:chat' }),
    namedClaims: named.claims,
    namedSubject: named.clientId,
    adminToken: await requestToken({ issuer: idpUrl, ...ROLE_CLIENTS.admin, scope: 'agui:chat' }),
    adminTwinToken: await requestToken({ issuer: idpUrl, ...ROLE_CLIENTS.adminTwin, scope: 'agui:chat' }),
    // Same IdP, same keys, valid signature: only `aud` is wrong (RFC 8707 resource of another API).
    wrongAudienceToken: await requestToken({
      issuer: idpUrl, clientId, clientSecret, resource: 'http://other-api', scope: 'other:read',
    }),
    mint: (scope = 'agui:chat') => requestToken({ issuer: idpUrl, clientId, clientSecret, scope }),
    // The OpenAI-provider scenarios (openai-scenarios.mjs): the second agui-server, the mock
    // model's root URL and the API key that server was given. Empty when run.mjs could not start
    // that server; those scenarios then fail saying so.
    openaiUrl: process.env.AGUI_OPENAI_URL ?? '',
    mockOpenAiUrl: process.env.AGUI_MOCK_OPENAI_URL ?? '',
    mockOpenAiKey: process.env.AGUI_MOCK_OPENAI_KEY ?? '',
  };
}

// ---------------------------------------------------------------------------------------------
// Checks shared by every streamed scenario

/**
 * Matches event types against a pattern where `X+` means one or more X in a row.
 *
 * @param {string[]} types event types as received
 * @param {string[]} pattern expected types
 */
export function assertSequence(types, pattern) {
  const source = pattern
    .map((item) => (item.endsWith('+') ? `(?:${item.slice(0, -1)},)+` : `${item},`))
    .join('');
  const ok = new RegExp(`^${source}$`).test(types.map((t) => `${t},`).join(''));
  assert.ok(ok, `event sequence ${types.join(' ')} does not match ${pattern.join(' ')}`);
}

/**
 * Judges one streamed run: transport, framing, schema fidelity, client fidelity, silence, the exact
 * sequence and the run boundary events. Returns the raw events for scenario-specific checks.
 *
 * @param {object} driver the suite's driver
 * @param {import('./driver.mjs').RunRecord} record the run
 * @param {string[]} pattern expected event types (`X+` = one or more)
 * @returns {object[]} the raw events
 */
export function assertStreamedRun(driver, record, pattern) {
  assert.equal(record.error, undefined, `runAgent rejected: ${record.error?.message}`);
  assert.deepEqual(record.failures, [], 'onRunFailed was called');
  assert.equal(record.status, 200, `HTTP ${record.status}`);
  assert.match(record.headers.get('content-type') ?? '', /^text\/event-stream\b/, 'content-type');
  const raw = parseSse(record.body);
  assertSequence(raw.map((e) => e.type), pattern);

  // Every raw event is what this client version's schema accepts, member for member.
  raw.forEach((event, i) => {
    let parsed;
    try {
      parsed = driver.parseEvent(event);
    } catch (error) {
      assert.fail(`event ${i} (${event.type}) fails the ${driver.name} schema: ${zodIssues(error)}`);
    }
    const problem = schemaKeptEverything(event, parsed, driver.schemaDefaults[event.type]);
    if (problem) assert.fail(`event ${i} (${event.type}) through the ${driver.name} schema: ${problem}`);
  });

  // The client delivered exactly what was sent: same events, same order, nothing stripped.
  assert.equal(record.clientEvents.length, raw.length, 'client delivered a different number of events');
  raw.forEach((event, i) => {
    const problem = schemaKeptEverything(event, record.clientEvents[i], driver.schemaDefaults[event.type]);
    if (problem) assert.fail(`event ${i} (${event.type}) as delivered by the client: ${problem}`);
  });
  assert.deepEqual(record.printed, [], 'the client printed warnings or errors');

  // Run boundaries (agui-1.0.md §9.8): ids echo the input, on both boundary events.
  const [started] = raw;
  assert.equal(started.threadId, record.input.threadId, 'RUN_STARTED.threadId');
  assert.equal(started.runId, record.input.runId, 'RUN_STARTED.runId');
  if (driver.dialect === '1.0') {
    assert.equal(started.protocolVersion, '1.0', 'RUN_STARTED.protocolVersion in the 1.0 dialect');
  } else {
    assert.equal(started.protocolVersion, undefined, 'RUN_STARTED.protocolVersion in the 0.0.x dialect');
    assert.equal(started.input, undefined, 'RUN_STARTED.input echo in the 0.0.x dialect');
  }
  const last = raw.at(-1);
  if (last.type === 'RUN_FINISHED') {
    assert.equal(last.threadId, record.input.threadId, 'RUN_FINISHED.threadId');
    assert.equal(last.runId, record.input.runId, 'RUN_FINISHED.runId');
  }
  assertConsistentIds(raw);
  if (driver.proto) {
    assertProtoReplayMatches(driver, record, raw);
    driver.protoCompared += 1;
  }
  return raw;
}

/**
 * The protobuf binding carries exactly the events of the SSE run (drivers with `proto`): the
 * driver replayed the client's input asking for protobuf; the answer must have exactly the
 * binding's media type (the client picks its parser by equality, agui-1.0.md §3.1, so a
 * parameter would make it parse protobuf as SSE and silently see nothing), length-prefixed frames
 * that decode with that version's decoder and pass its schema member for member, and the same
 * events as the SSE run. Normalised, and only because they must differ between two runs: the
 * ids the server mints (message and tool-call ids), the replay's fresh threadId and runId, and
 * timestamps (`normaliseRun`; ids are numbered by first use, so which event refers to which
 * message or call is still compared). Nothing else is.
 */
function assertProtoReplayMatches(driver, record, sseEvents) {
  const replay = record.proto;
  assert.ok(replay, 'the run was not replayed over protobuf');
  assert.equal(replay.status, 200, `protobuf replay: HTTP ${replay.status}`);
  assert.equal(replay.headers.get('content-type'), driver.proto.mediaType, 'protobuf replay: content-type');
  const decoded = splitProtoFrames(replay.body).map((frame, i) => {
    try {
      // Through JSON, as the SSE events were: drops members the decoder left undefined.
      return JSON.parse(JSON.stringify(driver.proto.decode(frame)));
    } catch (error) {
      return assert.fail(`protobuf frame ${i} does not decode: ${error.message}`);
    }
  });
  decoded.forEach((event, i) => {
    let parsed;
    try {
      parsed = driver.parseEvent(event);
    } catch (error) {
      assert.fail(`protobuf frame ${i} (${event.type}) fails the ${driver.name} schema: ${zodIssues(error)}`);
    }
    const problem = schemaKeptEverything(event, parsed, driver.schemaDefaults[event.type]);
    if (problem) assert.fail(`protobuf frame ${i} (${event.type}) through the ${driver.name} schema: ${problem}`);
  });
  assert.ok(decoded.length > 0, 'protobuf replay: no frames');
  assert.equal(decoded[0].threadId, replay.input.threadId, 'protobuf RUN_STARTED.threadId');
  assert.equal(decoded[0].runId, replay.input.runId, 'protobuf RUN_STARTED.runId');
  assertSameEvents(normaliseRun(decoded), normaliseRun(sseEvents), 'protobuf vs SSE (server ids, thread/run ids and timestamps normalised)');
}

// Every message/tool-call event refers to one its START opened: content and end to the open text
// message; args and end to a call started and not yet ended (calls may interleave, agui-1.0.md
// allows several open at once); a result to a call this run started and ended.
function assertConsistentIds(events) {
  let messageId;
  const open = new Set();
  const ended = new Set();
  for (const event of events) {
    if (event.type === 'TEXT_MESSAGE_START') messageId = event.messageId;
    if (event.type === 'TEXT_MESSAGE_CONTENT' || event.type === 'TEXT_MESSAGE_END') {
      assert.equal(event.messageId, messageId, `${event.type}.messageId`);
    }
    if (event.type === 'TOOL_CALL_START') {
      assert.ok(!open.has(event.toolCallId) && !ended.has(event.toolCallId), `TOOL_CALL_START ${event.toolCallId} started twice`);
      open.add(event.toolCallId);
    }
    if (event.type === 'TOOL_CALL_ARGS' || event.type === 'TOOL_CALL_END') {
      assert.ok(open.has(event.toolCallId), `${event.type}.toolCallId ${event.toolCallId} is not an open call`);
    }
    if (event.type === 'TOOL_CALL_END') {
      open.delete(event.toolCallId);
      ended.add(event.toolCallId);
    }
    if (event.type === 'TOOL_CALL_RESULT') {
      assert.ok(ended.has(event.toolCallId), `TOOL_CALL_RESULT.toolCallId ${event.toolCallId} is not an ended call`);
    }
  }
}

/** A zod error as one line: `path: message; ...`. */
export function zodIssues(error) {
  if (!Array.isArray(error?.issues)) return String(error?.message ?? error);
  return error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`).join('; ');
}

/**
 * Asserts two event lists are equal, naming the first event that differs.
 *
 * @param {object[]} actual events
 * @param {object[]} expected events
 * @param {string} what label for the message
 */
export function assertSameEvents(actual, expected, what) {
  const length = Math.max(actual.length, expected.length);
  for (let i = 0; i < length; i += 1) {
    if (!isDeepStrictEqual(actual[i], expected[i])) {
      assert.fail(`${what}: event ${i} differs: ${JSON.stringify(actual[i])} vs ${JSON.stringify(expected[i])}`);
    }
  }
}

/** The concatenated text deltas of a run. */
export function textOf(events) {
  return events.filter((e) => e.type === 'TEXT_MESSAGE_CONTENT').map((e) => e.delta).join('');
}

/** The concatenated argument deltas of a run's tool call. */
export function argsOf(events) {
  return events.filter((e) => e.type === 'TOOL_CALL_ARGS').map((e) => e.delta).join('');
}

/**
 * POSTs a RunAgentInput without any client library (for status, headers and protobuf checks).
 *
 * @param {string} url chat endpoint
 * @param {{token?: string, authorization?: string, input: object, accept?: string}} request
 * @returns {Promise<{status: number, headers: Headers, body: Uint8Array}>}
 */
export async function rawChat(url, { token, authorization, input, accept = 'text/event-stream' }) {
  const headers = { 'content-type': 'application/json', accept };
  if (authorization !== undefined) headers.authorization = authorization;
  else if (token) headers.authorization = `Bearer ${token}`;
  const response = await nativeFetch(url, { method: 'POST', headers, body: JSON.stringify(input) });
  return { status: response.status, headers: response.headers, body: new Uint8Array(await response.arrayBuffer()) };
}

/**
 * A RunAgentInput as a client of `dialect` would send it.
 *
 * @param {{text?: string, messages?: object[], tools?: object[], protocolVersion?: string}} [options]
 *   `protocolVersion` defaults to "1.0" (what the 1.0 client sends); pass `undefined` explicitly
 *   for a 0.0.x-style input without it.
 */
export function runInput(options = {}) {
  const { text, messages = [], tools = [] } = options;
  const protocolVersion = 'protocolVersion' in options ? options.protocolVersion : '1.0';
  const all = text === undefined ? messages : [...messages, { id: `user-${randomUUID()}`, role: 'user', content: text }];
  return {
    threadId: `thread-${randomUUID()}`,
    runId: `run-${randomUUID()}`,
    ...(protocolVersion === undefined ? {} : { protocolVersion }),
    state: {},
    messages: all,
    tools,
    context: [],
    forwardedProps: {},
  };
}

function jsonOf(bytes) {
  return JSON.parse(new TextDecoder().decode(bytes));
}

// ---------------------------------------------------------------------------------------------
// The scenarios

const TEXT_RUN = ['RUN_STARTED', 'TEXT_MESSAGE_START', 'TEXT_MESSAGE_CONTENT+', 'TEXT_MESSAGE_END', 'RUN_FINISHED'];
const BACKEND_TOOL_RUN = [
  'RUN_STARTED', 'TOOL_CALL_START', 'TOOL_CALL_ARGS', 'TOOL_CALL_END', 'TOOL_CALL_RESULT',
  'TEXT_MESSAGE_START', 'TEXT_MESSAGE_CONTENT+', 'TEXT_MESSAGE_END', 'RUN_FINISHED',
];
const FRONTEND_TOOL_RUN = ['RUN_STARTED', 'TOOL_CALL_START', 'TOOL_CALL_ARGS', 'TOOL_CALL_END', 'RUN_FINISHED'];

// The scripted model's backend-tool turn followed by the state it changed (DESIGN "Interfaces",
// server/agent/src/run.rs): the baseline snapshot (the state the client sent), then the delta.
const STATE_TOOL_RUN = [
  'RUN_STARTED', 'TOOL_CALL_START', 'TOOL_CALL_ARGS', 'TOOL_CALL_END', 'TOOL_CALL_RESULT',
  'STATE_SNAPSHOT', 'STATE_DELTA',
  'TEXT_MESSAGE_START', 'TEXT_MESSAGE_CONTENT+', 'TEXT_MESSAGE_END', 'RUN_FINISHED',
];

/** The demo documents agui-server seeds for each user on first use (tools/builtin.rs). */
const SEEDED_DOCUMENTS = Object.freeze([
  { id: 1, title: 'Welcome', body: 'How to use this workspace.' },
  { id: 2, title: 'Quarterly plan', body: 'Goals and milestones for next quarter.' },
  { id: 3, title: 'Meeting notes', body: "Decisions from Monday's sync." },
]);

/**
 * Runs one backend-tool turn and judges it: the exact sequence, one call of `tool` with `args`,
 * its result, the reply (one sentence about the result, never its raw JSON; exactly `reply` when
 * given) and the tool message the client kept. Returns the parsed result.
 *
 * @param {object} driver the suite's driver
 * @param {object} handle from `driver.agent()`
 * @param {{text: string, tool: string, args: object, reply?: string, pattern?: string[], protoToken?: string}} step
 * @returns {Promise<{result: any, events: object[], record: object}>}
 */
async function backendToolTurn(driver, handle, { text, tool, args, reply, pattern = BACKEND_TOOL_RUN, protoToken }) {
  const record = await driver.run(handle, { text, protoToken });
  const events = assertStreamedRun(driver, record, pattern);
  const start = events.find((e) => e.type === 'TOOL_CALL_START');
  assert.equal(start.toolCallName, tool, 'TOOL_CALL_START.toolCallName');
  assert.deepEqual(JSON.parse(argsOf(events) || '{}'), args, `${tool} arguments`);
  const result = events.find((e) => e.type === 'TOOL_CALL_RESULT');
  assert.equal(result.toolCallId, start.toolCallId, 'TOOL_CALL_RESULT.toolCallId');
  assert.equal(typeof result.content, 'string', 'TOOL_CALL_RESULT.content is a string');
  const said = textOf(events);
  assert.ok(said.length > 0 && !said.includes(result.content) && !said.includes('{'), `the reply is a sentence, not the result: ${said}`);
  if (reply !== undefined) assert.equal(said, reply, 'the reply says what the tool did');
  const toolMessage = record.messages.find((m) => m.role === 'tool' && m.toolCallId === start.toolCallId);
  assert.ok(toolMessage, 'client kept a tool message for the call');
  assert.equal(toolMessage.content, result.content, 'the client tool message holds the result');
  return { result: JSON.parse(result.content), events, record };
}

/** The ids of a `list_my_documents` result, checking each entry is `{id, title}` of a seeded one. */
function listedIds(result) {
  assert.ok(Array.isArray(result.documents), `list_my_documents result: ${JSON.stringify(result)}`);
  return result.documents.map((doc) => {
    const seeded = SEEDED_DOCUMENTS.find((d) => d.id === doc.id);
    assert.ok(seeded, `unknown document ${JSON.stringify(doc)}`);
    assert.deepEqual(doc, { id: seeded.id, title: seeded.title }, 'listed document');
    return doc.id;
  });
}

async function whoamiScenario(driver, ctx, { text, token, expect }) {
  const handle = driver.agent({ token });
  const record = await driver.run(handle, { text });
  const events = assertStreamedRun(driver, record, BACKEND_TOOL_RUN);
  const start = events.find((e) => e.type === 'TOOL_CALL_START');
  assert.equal(start.toolCallName, 'whoami');
  assert.ok(typeof start.parentMessageId === 'string' && start.parentMessageId.length > 0, 'parentMessageId set');
  assert.deepEqual(JSON.parse(argsOf(events) || '{}'), {}, 'whoami arguments');
  const result = events.find((e) => e.type === 'TOOL_CALL_RESULT');
  assert.equal(typeof result.content, 'string', 'TOOL_CALL_RESULT.content is a string in both dialects here');
  const principal = JSON.parse(result.content);
  assert.equal(principal.issuer, ctx.idpUrl, 'whoami issuer');
  assert.equal(principal.subject, expect.subject, 'whoami subject');
  assert.ok(Array.isArray(principal.roles), 'whoami roles is an array');
  assert.ok(Array.isArray(principal.scopes) && principal.scopes.includes('agui:chat'), 'whoami scopes has agui:chat');
  // name/email are optional: absent or null when the token has no such claim.
  for (const key of ['name', 'email']) assert.equal(principal[key] ?? undefined, expect[key], `whoami ${key}`);
  if (expect.roles) assert.deepEqual(principal.roles, expect.roles, 'whoami roles');
  // The answer after the tool names who the result says the caller is.
  const who = principal.name || principal.email || principal.subject;
  assert.ok(textOf(events).startsWith(`Here is who you are: ${who}, `), `the reply reads the whoami result: ${textOf(events)}`);
  // The client rebuilt the conversation: the tool message carries the result for that call.
  const toolMessage = record.messages.find((m) => m.role === 'tool' && m.toolCallId === start.toolCallId);
  assert.ok(toolMessage, 'client kept a tool message for the call');
  assert.equal(toolMessage.content, result.content);
}

/**
 * Every scenario both suites run. Each `run(driver, ctx)` throws (assert) on any deviation.
 * `httpOnly: true` marks the ones that stream no run through the client (HTTP errors).
 */
export const SCENARIOS = Object.freeze([
  {
    name: 'greeting names the token subject (client_credentials token: display name = sub)',
    async run(driver, ctx) {
      const record = await driver.run(driver.agent({ token: ctx.token }), { text: 'hello there' });
      const events = assertStreamedRun(driver, record, TEXT_RUN);
      assert.equal(decodeJwt(ctx.token).payload.sub, ctx.subject, 'the IdP token carries the expected sub');
      assert.equal(textOf(events), `Hello, ${ctx.subject}! You said: "hello there"`);
      assert.equal(events[1].role ?? 'assistant', 'assistant', 'TEXT_MESSAGE_START.role');
    },
  },
  {
    name: 'greeting uses the name claim when the token has one',
    async run(driver, ctx) {
      const record = await driver.run(driver.agent({ token: ctx.namedToken }), { text: 'hello there' });
      const events = assertStreamedRun(driver, record, TEXT_RUN);
      assert.equal(textOf(events), `Hello, ${ctx.namedClaims.name}! You said: "hello there"`);
    },
  },
  {
    name: '/stream 5 sends five 16-byte deltas a..e',
    async run(driver, ctx) {
      const record = await driver.run(driver.agent({ token: ctx.token }), { text: '/stream 5' });
      const events = assertStreamedRun(driver, record, TEXT_RUN);
      const deltas = events.filter((e) => e.type === 'TEXT_MESSAGE_CONTENT').map((e) => e.delta);
      assert.deepEqual(deltas, ['a', 'b', 'c', 'd', 'e'].map((c) => c.repeat(16)));
    },
  },
  {
    name: '/stream 3 4 sends aaaa bbbb cccc',
    async run(driver, ctx) {
      const record = await driver.run(driver.agent({ token: ctx.token }), { text: '/stream 3 4' });
      const events = assertStreamedRun(driver, record, TEXT_RUN);
      assert.deepEqual(events.filter((e) => e.type === 'TEXT_MESSAGE_CONTENT').map((e) => e.delta), ['aaaa', 'bbbb', 'cccc']);
    },
  },
  {
    name: '"Who Am I?" calls the whoami backend tool with the verified identity',
    run: (driver, ctx) => whoamiScenario(driver, ctx, { text: 'Who Am I?', token: ctx.token, expect: { subject: ctx.subject } }),
  },
  {
    name: '/tool whoami {} calls the whoami backend tool',
    run: (driver, ctx) => whoamiScenario(driver, ctx, { text: '/tool whoami {}', token: ctx.token, expect: { subject: ctx.subject } }),
  },
  {
    name: 'whoami reports name, email and roles from the token claims',
    run: (driver, ctx) =>
      whoamiScenario(driver, ctx, {
        text: 'who am i',
        token: ctx.namedToken,
        expect: { subject: ctx.namedSubject, ...ctx.namedClaims },
      }),
  },
  {
    name: 'frontend tool: call streamed, left pending, then answered in the next run',
    async run(driver, ctx) {
      const handle = driver.agent({ token: ctx.token });
      const first = await driver.run(handle, { text: 'change the accent colour to teal', tools: [ACCENT_TOOL] });
      const events = assertStreamedRun(driver, first, FRONTEND_TOOL_RUN);
      const start = events.find((e) => e.type === 'TOOL_CALL_START');
      assert.equal(start.toolCallName, 'change_accent_color');
      assert.deepEqual(JSON.parse(argsOf(events)), { color: 'teal' }, 'tool arguments');
      const finished = events.at(-1);
      if (driver.dialect === '1.0') {
        // agui-1.0.md §7: SHOULD list exactly the unanswered calls.
        assert.deepEqual(finished.outcome, { type: 'success', pendingToolCallIds: [start.toolCallId] }, 'RUN_FINISHED.outcome');
      } else {
        // 0.0.59 rejects pendingToolCallIds ("Unrecognized key"; DESIGN "Two dialects").
        assert.equal(finished.outcome?.pendingToolCallIds, undefined, 'no pendingToolCallIds in the 0.0.x dialect');
      }
      const assistant = first.messages.find((m) => m.role === 'assistant' && m.toolCalls?.some((c) => c.id === start.toolCallId));
      assert.ok(assistant, 'the client recorded the assistant message with the tool call');

      // The app executes the tool and answers it; the client sends the whole history again.
      const answer = { id: `tool-${randomUUID()}`, role: 'tool', toolCallId: start.toolCallId, content: 'ok' };
      const second = await driver.run(handle, { add: [answer], tools: [ACCENT_TOOL] });
      const sent = second.input.messages;
      assert.ok(sent.some((m) => m.role === 'assistant' && m.toolCalls?.[0]?.id === start.toolCallId), 'history has the call');
      assert.deepEqual(sent.at(-1), answer, 'history ends with the tool answer');
      const reply = assertStreamedRun(driver, second, TEXT_RUN);
      const text = textOf(reply);
      assert.equal(text, 'The change_accent_color tool says: ok.', 'the reply quotes the result');
    },
  },
  {
    name: '"list my documents" calls list_my_documents: the caller\'s seeded documents',
    async run(driver, ctx) {
      // The service token never deletes anything, so its documents are exactly the seeded ones.
      const handle = driver.agent({ token: ctx.token });
      const { result } = await backendToolTurn(driver, handle, {
        text: 'list my documents',
        tool: 'list_my_documents',
        args: {},
        reply: 'You have 3 documents: #1 Welcome, #2 Quarterly plan, #3 Meeting notes.',
      });
      assert.deepEqual(result, { documents: SEEDED_DOCUMENTS.map(({ id, title }) => ({ id, title })) });
    },
  },
  {
    name: '"show document 2" calls get_document: the caller\'s own document; 99 is not_found',
    async run(driver, ctx) {
      const handle = driver.agent({ token: ctx.token });
      const { result } = await backendToolTurn(driver, handle, { text: 'Show document 2', tool: 'get_document', args: { id: 2 }, reply: 'Here is document 2, "Quarterly plan".' });
      const seeded = SEEDED_DOCUMENTS[1];
      assert.deepEqual(result, { ...seeded, body: `${seeded.body} (owner: ${ctx.subject})` }, 'get_document result');
      // Another id in the same thread: a tool error is a result the model reads, not a run failure.
      const missing = await backendToolTurn(driver, handle, { text: 'show document 99', tool: 'get_document', args: { id: 99 }, reply: 'Not found: you have no document 99.' });
      assert.deepEqual(missing.result, { error: 'not_found', message: 'you have no document 99' });
    },
  },
  {
    name: '"delete document N" without the admin role: tool_not_allowed result, the document survives',
    async run(driver, ctx) {
      assert.ok(!ctx.namedClaims.roles.includes('admin'), 'the named token has roles, but not admin');
      const handle = driver.agent({ token: ctx.namedToken });
      const denied = await backendToolTurn(driver, handle, {
        text: 'delete document 1',
        tool: 'delete_document',
        args: { id: 1 },
        reply: 'You are not allowed to use delete_document, so nothing was done.',
      });
      assert.deepEqual(denied.result, { error: 'tool_not_allowed', message: 'you are not allowed to use this tool' });
      assert.equal(denied.events.at(-1).type, 'RUN_FINISHED', 'a denial is a result, not a failure');
      // The tool did not run: the document is still there.
      const shown = await backendToolTurn(driver, handle, { text: 'show document 1', tool: 'get_document', args: { id: 1 } });
      assert.equal(shown.result.id, 1, `document 1 survives: ${JSON.stringify(shown.result)}`);
    },
  },
  {
    name: '"delete document N" with the admin role (positive control): deleted, gone from the list',
    async run(driver, ctx) {
      // Both suites run against one server and the admin's documents persist between them, so
      // the scenario deletes whichever document is listed first rather than a fixed id.
      const handle = driver.agent({ token: ctx.adminToken });
      const before = listedIds((await backendToolTurn(driver, handle, { text: 'list my documents', tool: 'list_my_documents', args: {} })).result);
      assert.ok(before.length > 0, 'the admin has a document left to delete');
      const [id] = before;
      const deleted = await backendToolTurn(driver, handle, {
        text: `delete document ${id}`,
        tool: 'delete_document',
        args: { id },
        reply: `Document ${id} is deleted.`,
        protoToken: ctx.adminTwinToken,
      });
      assert.deepEqual(deleted.result, { deleted: id });
      const after = listedIds((await backendToolTurn(driver, handle, { text: 'list my documents', tool: 'list_my_documents', args: {} })).result);
      assert.deepEqual(after, before.filter((other) => other !== id), 'the deleted document is gone, the others remain');
      const again = await backendToolTurn(driver, handle, { text: `delete document ${id}`, tool: 'delete_document', args: { id } });
      assert.deepEqual(again.result, { error: 'not_found', message: `you have no document ${id}` });
    },
  },
  {
    name: '"set my theme to dark": STATE_SNAPSHOT of the sent state, STATE_DELTA, applied by the client',
    async run(driver, ctx) {
      const handle = driver.agent({ token: ctx.token, initialState: { counter: 1 } });
      const first = await backendToolTurn(driver, handle, {
        text: 'set my theme to dark',
        tool: 'set_preference',
        args: { key: 'theme', value: 'dark' },
        reply: 'Your theme is now dark.',
        pattern: STATE_TOOL_RUN,
      });
      assert.deepEqual(first.record.input.state, { counter: 1 }, 'the client sent its state');
      assert.deepEqual(first.result, { preference: 'theme', value: 'dark' });
      const snapshot = first.events.find((e) => e.type === 'STATE_SNAPSHOT');
      assert.deepEqual(snapshot.snapshot, { counter: 1 }, 'the baseline is the state the client sent');
      const delta = first.events.find((e) => e.type === 'STATE_DELTA');
      assert.deepEqual(delta.delta, [{ op: 'add', path: '/preferences', value: { theme: 'dark' } }]);
      const afterFirst = { counter: 1, preferences: { theme: 'dark' } };
      assert.deepEqual(first.record.state, afterFirst, 'the client applied the snapshot and the delta');
      assert.deepEqual(first.record.stateChanges, [{ counter: 1 }, afterFirst], 'onStateChanged: snapshot, then delta');

      // The next run in the thread sends the applied state; the server patches from there.
      const second = await backendToolTurn(driver, handle, {
        text: 'Set my language to French.',
        tool: 'set_preference',
        args: { key: 'language', value: 'French' },
        reply: 'Your language is now French.',
        pattern: STATE_TOOL_RUN,
      });
      assert.deepEqual(second.record.input.state, afterFirst, 'the client sent the state it applied');
      assert.deepEqual(second.events.find((e) => e.type === 'STATE_SNAPSHOT').snapshot, afterFirst);
      assert.deepEqual(second.events.find((e) => e.type === 'STATE_DELTA').delta, [
        { op: 'add', path: '/preferences/language', value: 'French' },
      ]);
      const afterSecond = { counter: 1, preferences: { theme: 'dark', language: 'French' } };
      assert.deepEqual(second.record.state, afterSecond, 'the client applied the second delta');
      assert.deepEqual(second.record.stateChanges, [afterFirst, afterSecond], 'onStateChanged: snapshot, then delta');
    },
  },
  {
    name: 'a run whose tools change nothing sends no state events (control for the state scenario)',
    async run(driver, ctx) {
      const handle = driver.agent({ token: ctx.token, initialState: { counter: 1 } });
      const { record } = await backendToolTurn(driver, handle, { text: 'list my documents', tool: 'list_my_documents', args: {} });
      assert.deepEqual(record.state, { counter: 1 }, 'state unchanged');
      assert.deepEqual(record.stateChanges, [], 'onStateChanged never fired');
    },
  },
  {
    name: '/tool nosuch {} (no such tool): unknown_tool result, the run finishes',
    async run(driver, ctx) {
      const handle = driver.agent({ token: ctx.token });
      const { result, events } = await backendToolTurn(driver, handle, { text: '/tool nosuch {}', tool: 'nosuch', args: {}, reply: 'There is no tool called nosuch.' });
      assert.deepEqual(result, { error: 'unknown_tool', message: 'there is no tool by that name' });
      assert.equal(events.at(-1).type, 'RUN_FINISHED');
    },
  },
  {
    name: '/fail ends the run with RUN_ERROR model_error, reported to onRunErrorEvent',
    async run(driver, ctx) {
      const record = await driver.run(driver.agent({ token: ctx.token }), { text: '/fail' });
      const events = assertStreamedRun(driver, record, ['RUN_STARTED', 'RUN_ERROR']);
      const error = events[1];
      assert.equal(error.code, 'model_error');
      assert.ok(typeof error.message === 'string' && error.message.length > 0, 'RUN_ERROR.message');
      assert.equal(record.runErrorEvents.length, 1, 'onRunErrorEvent fired once');
      assert.equal(record.runErrorEvents[0].code, 'model_error');
    },
  },
  {
    name: 'no token: client fails with HTTP 401, challenge is Bearer realm="agui"',
    // HTTP errors only: no run is streamed through the client.
    httpOnly: true,
    async run(driver, ctx) {
      const record = await driver.run(driver.agent({}), { text: 'hello there' });
      assert.ok(record.error, 'runAgent must reject');
      assert.match(record.error.message, /HTTP 401/);
      assert.equal(record.clientEvents.length, 0, 'no events without a token');
      const raw = await rawChat(ctx.url, { input: runInput({ text: 'hello there' }) });
      assert.equal(raw.status, 401);
      assert.equal(raw.headers.get('www-authenticate'), 'Bearer realm="agui"');
      // Positive control: the same request with the token streams.
      const control = await rawChat(ctx.url, { token: ctx.token, input: runInput({ text: 'hello there' }) });
      assert.equal(control.status, 200, 'positive control');
    },
  },
  {
    name: 'wrong-audience token: 401 invalid_token (the client fails with HTTP 401)',
    // HTTP errors only: no run is streamed through the client.
    httpOnly: true,
    async run(driver, ctx) {
      assert.equal(decodeJwt(ctx.wrongAudienceToken).payload.aud, 'other-api', 'token is for another API');
      const record = await driver.run(driver.agent({ token: ctx.wrongAudienceToken }), { text: 'hello there' });
      assert.match(record.error?.message ?? '', /HTTP 401/);
      const raw = await rawChat(ctx.url, { token: ctx.wrongAudienceToken, input: runInput({ text: 'hello there' }) });
      assert.equal(raw.status, 401);
      assert.match(raw.headers.get('www-authenticate') ?? '', /^Bearer .*error="invalid_token"/);
    },
  },
  {
    name: 'garbage and tampered tokens: 401 invalid_token',
    // HTTP errors only: no run is streamed through the client.
    httpOnly: true,
    async run(driver, ctx) {
      const [header, payload, signature] = ctx.token.split('.');
      const flipped = signature[0] === 'A' ? `B${signature.slice(1)}` : `A${signature.slice(1)}`;
      for (const bad of ['garbage', `${header}.${payload}.${flipped}`]) {
        const raw = await rawChat(ctx.url, { token: bad, input: runInput({ text: 'hello there' }) });
        assert.equal(raw.status, 401);
        assert.match(raw.headers.get('www-authenticate') ?? '', /^Bearer .*error="invalid_token"/);
      }
      const record = await driver.run(driver.agent({ token: 'garbage' }), { text: 'hello there' });
      assert.match(record.error?.message ?? '', /HTTP 401/);
    },
  },
  {
    name: 'protocolVersion "2.0": 400 unsupported_protocol_version, "1.0" and absent are served',
    // HTTP errors only: no run is streamed through the client.
    httpOnly: true,
    async run(driver, ctx) {
      const raw = await rawChat(ctx.url, { token: ctx.token, input: runInput({ text: 'hi', protocolVersion: '2.0' }) });
      assert.equal(raw.status, 400);
      assert.match(raw.headers.get('content-type') ?? '', /^application\/json\b/);
      assert.equal(jsonOf(raw.body).error, 'unsupported_protocol_version');
      for (const protocolVersion of ['1.0', undefined]) {
        const control = await rawChat(ctx.url, { token: ctx.token, input: runInput({ text: 'hi', protocolVersion }) });
        assert.equal(control.status, 200, `protocolVersion ${protocolVersion} must be served`);
        const events = parseSse(control.body);
        assert.equal(events.at(-1).type, 'RUN_FINISHED');
      }
    },
  },
]);

/**
 * Runs every shared scenario with `driver`, reporting each through `report.test`.
 *
 * @param {object} driver the suite's driver
 * @param {object} ctx from {@link suiteContext}
 * @param {{test: (name: string, fn: () => Promise<void>) => Promise<void>}} report
 */
export async function runScenarios(driver, ctx, report) {
  for (const scenario of SCENARIOS) {
    await report.test(scenario.name, () => scenario.run(driver, ctx));
  }
}
