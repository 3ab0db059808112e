// The OpenAI-provider scenarios, shared by both suites: proves that agui-server with
// AGUI_MODEL=openai, in front of a mock OpenAI-compatible server (mock-openai.mjs) replaying the
// provider's documented chunk formats, gives each official client (1.0.0 and 0.0.59) exactly the
// events the model's stream means: text, tool calls split, whole and interleaved (left pending for
// the client's frontend tools), a backend tool round trip, reasoning, usage, retried rate limits,
// and RUN_ERROR codes for upstream failures and truncated streams. On the mock's side it proves
// what agui-server sends upstream: the rendered system prompt, the history, the offered tools, the
// configured API key, and never a byte of the caller's bearer token.
// Each scenario marks its user message with `[mock:<script>#<nonce>]`, which picks the mock's reply
// and finds its requests among those the mock recorded. No @ag-ui import (see scenarios.mjs).

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';

import { decodeJwt } from '../idp/client.mjs';
import { fetchRecordedRequests } from './mock-openai.mjs';
import { argsOf, assertStreamedRun, textOf } from './scenarios.mjs';

/** How run.mjs configures the OpenAI-backed agui-server (env and its agui.toml). */
export const OPENAI_AGENT = Object.freeze({
  model: 'conformance-model',
  systemPrompt: 'You are the conformance agent. User: {user.name}. Email: {user.email}. Roles: {user.roles}.',
  // whoami only: the fixtures' other tool names (get_document, list_my_documents) are built-in
  // tools too, and a backend tool always wins over a frontend tool of the same name.
  backendTools: Object.freeze(['whoami']),
});

/** Frontend tools the client declares (what a CopilotKit app registers with useFrontendTool). */
const WEATHER_TOOL = Object.freeze({
  name: 'get_weather',
  description: 'Show the weather for a city in the app',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
});
const DOCUMENT_TOOL = Object.freeze({
  name: 'get_document',
  description: 'Open a document in the app',
  parameters: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] },
});

/** plain_text.sse: its text, and the usage its final chunk reports, as AG-UI TokenUsage. */
const PLAIN_TEXT = 'Hello, Ada! Ünïcödé ✓';
const PLAIN_DELTAS = ['Hello', ', Ada', '! Ünïcödé ✓'];
const PLAIN_USAGE = Object.freeze({
  provider: 'openai', model: 'gpt-4o-mini-2024-07-18', inputTokens: 21, outputTokens: 6, totalTokens: 27, reasoningTokens: 0, cachedInputTokens: 0,
});

const TEXT_RUN = ['RUN_STARTED', 'TEXT_MESSAGE_START', 'TEXT_MESSAGE_CONTENT+', 'TEXT_MESSAGE_END', 'RUN_FINISHED'];
const FRONTEND_CALL_RUN = ['RUN_STARTED', 'TOOL_CALL_START', 'TOOL_CALL_ARGS+', 'TOOL_CALL_END', 'RUN_FINISHED'];

/** A fresh marker for `script`: picks the mock's reply and tags this scenario's requests. */
function marker(script) {
  return `[mock:${script}#${randomUUID()}]`;
}

/** The requests the mock recorded for `tag`, in arrival order. */
async function requestsFor(ctx, tag) {
  return (await fetchRecordedRequests(ctx.mockOpenAiUrl)).filter((r) => r.marker === tag);
}

/** The system prompt agui-server should send for a principal (its `{user.*}` placeholders). */
function renderedPrompt({ name, email = '', roles = [] }) {
  return OPENAI_AGENT.systemPrompt
    .replace('{user.name}', name)
    .replace('{user.email}', email)
    .replace('{user.roles}', roles.join(', '));
}

/** The caller as the system prompt names it: the service token has no name/email/roles claims. */
function plainCaller(ctx) {
  const claims = decodeJwt(ctx.token).payload;
  assert.equal(claims.name ?? claims.email ?? claims.preferred_username, undefined, 'the plain test token has no name claims');
  return { name: ctx.subject, email: '', roles: claims.roles ?? [] };
}

function namedCaller(ctx) {
  return { name: ctx.namedClaims.name, email: ctx.namedClaims.email, roles: [...ctx.namedClaims.roles] };
}

/** Checks what every streamed request to the model carries; returns its messages. */
function assertModelRequest(ctx, request, { caller, userText }) {
  assert.equal(request.headers.authorization, `Bearer ${ctx.mockOpenAiKey}`, 'Authorization to the model is the configured API key');
  const { body } = request;
  assert.equal(body.model, OPENAI_AGENT.model, 'request.model');
  assert.equal(body.stream, true, 'request.stream');
  assert.deepEqual(body.stream_options, { include_usage: true }, 'request.stream_options');
  assert.deepEqual(body.messages[0], { role: 'system', content: renderedPrompt(caller) }, 'the rendered system prompt comes first');
  assert.deepEqual(body.messages[1], { role: 'user', content: userText }, 'then the user message, as the client sent it');
  return body.messages;
}

/** The offered tools by name (`{type:"function", function:{name, description, parameters}}`). */
function offeredTools(request) {
  return Object.fromEntries((request.body.tools ?? []).map((tool) => [tool.function?.name, tool]));
}

function assertOffersFrontendTool(request, tool) {
  const offered = offeredTools(request);
  assert.deepEqual(Object.keys(offered).sort(), [...OPENAI_AGENT.backendTools, tool.name].sort(), 'offered tools: the agent\'s backend tools and the client\'s');
  assert.equal(offered[tool.name].type, 'function');
  assert.equal(offered[tool.name].function.description, tool.description, `${tool.name} description`);
  assert.deepEqual(offered[tool.name].function.parameters, tool.parameters, `${tool.name} parameters`);
}

function assertPending(driver, finished, ids) {
  if (driver.dialect === '1.0') {
    assert.deepEqual(finished.outcome, { type: 'success', pendingToolCallIds: ids }, 'RUN_FINISHED.outcome lists the pending calls');
  } else {
    // 0.0.59 rejects pendingToolCallIds (DESIGN "Two dialects").
    assert.equal(finished.outcome?.pendingToolCallIds, undefined, 'no pendingToolCallIds in the 0.0.x dialect');
  }
}

/** Runs one failing-upstream scenario and checks RUN_STARTED, RUN_ERROR(code) and the callback. */
async function assertRunError(driver, ctx, { script, code, pattern = ['RUN_STARTED', 'RUN_ERROR'] }) {
  const tag = marker(script);
  const record = await driver.run(driver.agent({ token: ctx.token }), { text: `${tag} hello` });
  const events = assertStreamedRun(driver, record, pattern);
  const error = events.at(-1);
  assert.equal(error.code, code, 'RUN_ERROR.code');
  assert.ok(typeof error.message === 'string' && error.message.length > 0, 'RUN_ERROR.message');
  assert.ok(!error.message.includes('mock upstream detail'), `RUN_ERROR.message leaks the upstream body: ${error.message}`);
  assert.equal(record.runErrorEvents.length, 1, 'onRunErrorEvent fired once');
  assert.equal(record.runErrorEvents[0].code, code, 'onRunErrorEvent code');
  return { tag, events, record };
}

/**
 * Every OpenAI-provider scenario both suites run. Each `run(driver, ctx)` throws on any deviation.
 */
export const OPENAI_SCENARIOS = Object.freeze([
  {
    name: 'plain streamed text: exact deltas and usage; the model got the rendered system prompt, the text and the key',
    async run(driver, ctx) {
      const tag = marker('plain_text');
      const text = `${tag} Say hello`;
      const record = await driver.run(driver.agent({ token: ctx.namedToken }), { text });
      const events = assertStreamedRun(driver, record, TEXT_RUN);
      assert.deepEqual(events.filter((e) => e.type === 'TEXT_MESSAGE_CONTENT').map((e) => e.delta), PLAIN_DELTAS, 'text deltas');
      assert.equal(events[1].role ?? 'assistant', 'assistant', 'TEXT_MESSAGE_START.role');
      // Usage is on RUN_FINISHED in both dialects (0.0.59 accepts it; DESIGN "Two dialects").
      assert.deepEqual(events.at(-1).usage, [PLAIN_USAGE], 'RUN_FINISHED.usage');
      const reply = record.messages.at(-1);
      assert.deepEqual([reply.role, reply.content, reply.id], ['assistant', PLAIN_TEXT, events[1].messageId], 'the client\'s assistant message');

      const requests = await requestsFor(ctx, tag);
      assert.equal(requests.length, 1, 'one request to the model');
      const messages = assertModelRequest(ctx, requests[0], { caller: namedCaller(ctx), userText: text });
      assert.equal(messages.length, 2, 'system + user, nothing else');
      assert.deepEqual(Object.keys(offeredTools(requests[0])), [...OPENAI_AGENT.backendTools], 'offered tools: the agent\'s backend tools');
    },
  },
  {
    name: 'usage-only final chunk: cached and reasoning tokens on RUN_FINISHED; the prompt names a service caller by its subject',
    async run(driver, ctx) {
      const tag = marker('usage_only_final_chunk');
      const text = `${tag} Finish up`;
      const record = await driver.run(driver.agent({ token: ctx.token }), { text });
      const events = assertStreamedRun(driver, record, TEXT_RUN);
      assert.equal(textOf(events), 'Done.');
      assert.deepEqual(
        events.at(-1).usage,
        [{ provider: 'openai', model: 'gpt-4o-mini-2024-07-18', inputTokens: 1200, outputTokens: 300, totalTokens: 1500, reasoningTokens: 256, cachedInputTokens: 1024 }],
        'RUN_FINISHED.usage',
      );
      const requests = await requestsFor(ctx, tag);
      assert.equal(requests.length, 1, 'one request to the model');
      assertModelRequest(ctx, requests[0], { caller: plainCaller(ctx), userText: text });
    },
  },
  {
    name: 'tool call split over chunks to a frontend tool: arguments reassembled exactly, left pending',
    async run(driver, ctx) {
      const tag = marker('tool_call_split');
      const text = `${tag} What is the weather in Paris?`;
      const record = await driver.run(driver.agent({ token: ctx.token }), { text, tools: [WEATHER_TOOL] });
      const events = assertStreamedRun(driver, record, FRONTEND_CALL_RUN);
      const start = events[1];
      assert.deepEqual([start.toolCallId, start.toolCallName], ['call_w1', 'get_weather'], 'TOOL_CALL_START: the provider\'s id and name');
      assert.ok(typeof start.parentMessageId === 'string' && start.parentMessageId.length > 0, 'parentMessageId set');
      assert.deepEqual(events.filter((e) => e.type === 'TOOL_CALL_ARGS').map((e) => e.delta), ['{"', 'city', '":"', 'Paris', '"}'], 'argument deltas, one per chunk');
      assert.equal(argsOf(events), '{"city":"Paris"}');
      assertPending(driver, events.at(-1), ['call_w1']);
      assert.equal(events.at(-1).usage, undefined, 'no usage invented when the stream reports none');
      const assistant = record.messages.find((m) => m.id === start.parentMessageId);
      assert.ok(assistant, 'the client keeps an assistant message with the parentMessageId');
      assert.deepEqual(assistant.toolCalls, [{ id: 'call_w1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }], 'the client\'s tool call');

      const requests = await requestsFor(ctx, tag);
      assert.equal(requests.length, 1, 'one request to the model');
      assertModelRequest(ctx, requests[0], { caller: plainCaller(ctx), userText: text });
      assertOffersFrontendTool(requests[0], WEATHER_TOOL);
    },
  },
  {
    name: 'whole tool call in one chunk to a frontend tool: one args delta, left pending',
    async run(driver, ctx) {
      const tag = marker('tool_call_whole');
      const record = await driver.run(driver.agent({ token: ctx.token }), { text: `${tag} Open doc-7`, tools: [DOCUMENT_TOOL] });
      const events = assertStreamedRun(driver, record, FRONTEND_CALL_RUN);
      const start = events[1];
      assert.deepEqual([start.toolCallId, start.toolCallName], ['call_x9', 'get_document'], 'TOOL_CALL_START');
      assert.ok(typeof start.parentMessageId === 'string' && start.parentMessageId.length > 0, 'parentMessageId set');
      assert.deepEqual(events.filter((e) => e.type === 'TOOL_CALL_ARGS').map((e) => e.delta), ['{"id":"doc-7"}'], 'argument deltas');
      assertPending(driver, events.at(-1), ['call_x9']);
      const assistant = record.messages.find((m) => m.id === start.parentMessageId);
      assert.deepEqual(assistant?.toolCalls, [{ id: 'call_x9', type: 'function', function: { name: 'get_document', arguments: '{"id":"doc-7"}' } }], 'the client\'s tool call');
      const requests = await requestsFor(ctx, tag);
      assert.equal(requests.length, 1, 'one request to the model');
      assertOffersFrontendTool(requests[0], DOCUMENT_TOOL);
    },
  },
  {
    name: 'parallel interleaved calls: frontend calls pending, backend whoami answered; the answers reach the model',
    async run(driver, ctx) {
      const tag = marker('tool_calls_parallel_interleaved');
      const text = `${tag} Weather in Paris and Oslo, and who am I?`;
      const handle = driver.agent({ token: ctx.token });
      const first = await driver.run(handle, { text, tools: [WEATHER_TOOL] });
      const events = assertStreamedRun(driver, first, [
        'RUN_STARTED', 'TOOL_CALL_START', 'TOOL_CALL_START', 'TOOL_CALL_ARGS', 'TOOL_CALL_ARGS', 'TOOL_CALL_START',
        'TOOL_CALL_ARGS', 'TOOL_CALL_ARGS', 'TOOL_CALL_ARGS', 'TOOL_CALL_ARGS',
        'TOOL_CALL_END', 'TOOL_CALL_END', 'TOOL_CALL_END', 'TOOL_CALL_RESULT', 'RUN_FINISHED',
      ]);
      // The calls interleave exactly as the chunks do (by `index`), each delta on its own call.
      const calls = events.slice(1, -1).map((e) => [e.type, e.toolCallId, e.toolCallName ?? e.delta ?? null]);
      assert.deepEqual(calls.slice(0, 10), [
        ['TOOL_CALL_START', 'call_a', 'get_weather'],
        ['TOOL_CALL_START', 'call_b', 'get_weather'],
        ['TOOL_CALL_ARGS', 'call_b', '{"city":'],
        ['TOOL_CALL_ARGS', 'call_a', '{"city":'],
        ['TOOL_CALL_START', 'call_c', 'whoami'],
        ['TOOL_CALL_ARGS', 'call_c', '{'],
        ['TOOL_CALL_ARGS', 'call_a', '"Paris"}'],
        ['TOOL_CALL_ARGS', 'call_c', '}'],
        ['TOOL_CALL_ARGS', 'call_b', '"Oslo"}'],
        ['TOOL_CALL_END', 'call_a', null],
      ], 'interleaved tool call events');
      assert.deepEqual(events.slice(11, 14).map((e) => e.toolCallId), ['call_b', 'call_c', 'call_c'], 'then END b, END c, the whoami RESULT');
      const parents = new Set(events.filter((e) => e.type === 'TOOL_CALL_START').map((e) => e.parentMessageId));
      assert.equal(parents.size, 1, 'the three calls share one parentMessageId');
      const [parent] = parents;
      assert.ok(typeof parent === 'string' && parent.length > 0, 'parentMessageId set');
      const result = events.find((e) => e.type === 'TOOL_CALL_RESULT');
      assert.equal(JSON.parse(result.content).subject, ctx.subject, 'whoami ran with the verified identity');
      assertPending(driver, events.at(-1), ['call_a', 'call_b']);
      const assistant = first.messages.find((m) => m.id === parent);
      assert.deepEqual(
        assistant?.toolCalls?.map((c) => [c.id, c.function.name, c.function.arguments]),
        [['call_a', 'get_weather', '{"city":"Paris"}'], ['call_b', 'get_weather', '{"city":"Oslo"}'], ['call_c', 'whoami', '{}']],
        'the client reassembled every call',
      );

      // The app runs its two tools and answers; the model gets the whole history back.
      const answers = [
        { id: `tool-${randomUUID()}`, role: 'tool', toolCallId: 'call_a', content: 'sunny, 21 C' },
        { id: `tool-${randomUUID()}`, role: 'tool', toolCallId: 'call_b', content: 'rain, 9 C' },
      ];
      const second = await driver.run(handle, { add: answers, tools: [WEATHER_TOOL] });
      const reply = assertStreamedRun(driver, second, TEXT_RUN);
      assert.equal(textOf(reply), PLAIN_TEXT);

      const requests = await requestsFor(ctx, tag);
      assert.deepEqual(requests.map((r) => r.reply), ['tool_calls_parallel_interleaved.sse', 'plain_text.sse'], 'two requests to the model');
      const history = assertModelRequest(ctx, requests[1], { caller: plainCaller(ctx), userText: text });
      assert.deepEqual(history.map((m) => m.role), ['system', 'user', 'assistant', 'tool', 'tool', 'tool'], 'history roles');
      assert.deepEqual(
        history[2].tool_calls.map((c) => [c.id, c.type, c.function.name, c.function.arguments]),
        [['call_a', 'function', 'get_weather', '{"city":"Paris"}'], ['call_b', 'function', 'get_weather', '{"city":"Oslo"}'], ['call_c', 'function', 'whoami', '{}']],
        'the assistant turn with its three calls',
      );
      const toolContent = Object.fromEntries(history.slice(3).map((m) => [m.tool_call_id, m.content]));
      assert.deepEqual(toolContent, { call_a: 'sunny, 21 C', call_b: 'rain, 9 C', call_c: result.content }, 'every call answered once, with its result');
    },
  },
  {
    name: 'backend tool round trip: text, whoami call, its result, then the model\'s final text',
    async run(driver, ctx) {
      const tag = marker('whoami');
      const text = `${tag} Who am I?`;
      const record = await driver.run(driver.agent({ token: ctx.namedToken }), { text });
      const events = assertStreamedRun(driver, record, [
        'RUN_STARTED', 'TEXT_MESSAGE_START', 'TEXT_MESSAGE_CONTENT', 'TEXT_MESSAGE_END',
        'TOOL_CALL_START', 'TOOL_CALL_ARGS', 'TOOL_CALL_END', 'TOOL_CALL_RESULT',
        'TEXT_MESSAGE_START', 'TEXT_MESSAGE_CONTENT+', 'TEXT_MESSAGE_END', 'RUN_FINISHED',
      ]);
      assert.equal(events[2].delta, 'Checking.', 'the text before the call');
      const start = events[4];
      assert.deepEqual([start.toolCallId, start.toolCallName], ['chatcmpl-tool-1', 'whoami'], 'TOOL_CALL_START');
      assert.equal(start.parentMessageId, events[1].messageId, 'the call belongs to the assistant message that announced it');
      assert.equal(events[5].delta, '{}', 'whoami arguments');
      const result = events[7];
      assert.equal(result.toolCallId, 'chatcmpl-tool-1');
      const principal = JSON.parse(result.content);
      assert.equal(principal.issuer, ctx.idpUrl, 'whoami issuer');
      assert.equal(principal.subject, ctx.namedSubject, 'whoami subject');
      assert.deepEqual([principal.name, principal.email, principal.roles], [ctx.namedClaims.name, ctx.namedClaims.email, [...ctx.namedClaims.roles]], 'whoami claims');
      assert.ok(principal.scopes.includes('agui:chat'), 'whoami scopes');
      const finalText = events.slice(8);
      assert.notEqual(finalText[0].messageId, events[1].messageId, 'the final answer is a new message');
      assert.equal(textOf(finalText), PLAIN_TEXT, 'the model\'s final text');
      assert.deepEqual(events.at(-1).usage, [PLAIN_USAGE], 'RUN_FINISHED.usage: the turn that reported usage');
      const toolMessage = record.messages.find((m) => m.role === 'tool' && m.toolCallId === 'chatcmpl-tool-1');
      assert.equal(toolMessage?.content, result.content, 'the client kept the tool message');

      const requests = await requestsFor(ctx, tag);
      assert.deepEqual(requests.map((r) => r.reply), ['tool_calls_then_stop.sse', 'plain_text.sse'], 'two model turns');
      assertModelRequest(ctx, requests[0], { caller: namedCaller(ctx), userText: text });
      const history = assertModelRequest(ctx, requests[1], { caller: namedCaller(ctx), userText: text });
      assert.deepEqual(history.slice(2), [
        { role: 'assistant', content: 'Checking.', tool_calls: [{ id: 'chatcmpl-tool-1', type: 'function', function: { name: 'whoami', arguments: '{}' } }] },
        { role: 'tool', content: result.content, tool_call_id: 'chatcmpl-tool-1' },
      ], 'the second turn carries the call and its result');
    },
  },
  {
    name: 'reasoning_content: REASONING_* events then the answer; reasoning is never sent back to the model',
    async run(driver, ctx) {
      const tag = marker('reasoning_content');
      const handle = driver.agent({ token: ctx.token });
      const record = await driver.run(handle, { text: `${tag} What is 2+2?` });
      // Both dialects send REASONING_* unchanged: 0.0.59 knows all 1.0 event types
      // (server/protocol/src/dialect.rs), so the legacy mapping leaves them alone.
      const events = assertStreamedRun(driver, record, [
        'RUN_STARTED', 'REASONING_START', 'REASONING_MESSAGE_START', 'REASONING_MESSAGE_CONTENT', 'REASONING_MESSAGE_CONTENT',
        'REASONING_MESSAGE_END', 'REASONING_END', 'TEXT_MESSAGE_START', 'TEXT_MESSAGE_CONTENT', 'TEXT_MESSAGE_END', 'RUN_FINISHED',
      ]);
      const reasoningIds = new Set(events.slice(1, 7).map((e) => e.messageId));
      assert.equal(reasoningIds.size, 1, 'one reasoning message id across REASONING_*');
      const [reasoningId] = reasoningIds;
      assert.ok(typeof reasoningId === 'string' && reasoningId.length > 0, 'reasoning messageId set');
      assert.notEqual(events[7].messageId, reasoningId, 'the answer is a different message');
      assert.deepEqual([events[3].delta, events[4].delta], ['The user asks', ' for 2+2.'], 'reasoning deltas');
      assert.equal(textOf(events), '4');
      assert.deepEqual(
        events.at(-1).usage,
        [{ provider: 'openai', model: 'deepseek-reasoner', inputTokens: 12, outputTokens: 40, totalTokens: 52, reasoningTokens: 38, cachedInputTokens: 0 }],
        'RUN_FINISHED.usage',
      );
      const reasoning = record.messages.find((m) => m.id === reasoningId);
      assert.deepEqual([reasoning?.role, reasoning?.content], ['reasoning', 'The user asks for 2+2.'], 'the client\'s reasoning message');

      // Next turn in the same thread: the client sends its whole history back, reasoning included;
      // agui-server must not forward it (DeepSeek: reasoning_content is not an input).
      const next = marker('plain_text');
      const second = await driver.run(handle, { text: `${next} Thanks` });
      assertStreamedRun(driver, second, TEXT_RUN);
      assert.ok(second.input.messages.some((m) => m.role === 'reasoning'), 'positive control: the client sent its reasoning message');
      const [request] = await requestsFor(ctx, next);
      assert.deepEqual(request.body.messages.map((m) => m.role), ['system', 'user', 'assistant', 'user'], 'history sent to the model');
      assert.equal(request.body.messages[2].content, '4', 'the previous answer, without its reasoning');
      assert.ok(!JSON.stringify(request.body).includes('The user asks'), 'no reasoning text in the request');
    },
  },
  {
    name: 'provider 429 then success: retried before the first byte, the client sees one clean run',
    async run(driver, ctx) {
      const tag = marker('rate_limited_once');
      const record = await driver.run(driver.agent({ token: ctx.token }), { text: `${tag} hello` });
      const events = assertStreamedRun(driver, record, TEXT_RUN);
      assert.equal(textOf(events), PLAIN_TEXT);
      const requests = await requestsFor(ctx, tag);
      assert.deepEqual(requests.map((r) => r.reply), ['HTTP 429', 'plain_text.sse'], 'one 429, one retry');
      assert.deepEqual(requests[1].body, requests[0].body, 'the retry repeats the same request');
    },
  },
  {
    name: 'provider 500: RUN_ERROR model_unavailable after the retries, reported to onRunErrorEvent',
    async run(driver, ctx) {
      const { tag } = await assertRunError(driver, ctx, { script: 'server_error', code: 'model_unavailable' });
      const requests = await requestsFor(ctx, tag);
      // The first attempt and max_retries (default 2) retries.
      assert.deepEqual(requests.map((r) => r.reply), ['HTTP 500', 'HTTP 500', 'HTTP 500'], 'requests to the model');
    },
  },
  {
    name: 'provider 401: RUN_ERROR model_unauthorized, never retried, reported to onRunErrorEvent',
    async run(driver, ctx) {
      const { tag } = await assertRunError(driver, ctx, { script: 'unauthorized', code: 'model_unauthorized' });
      const requests = await requestsFor(ctx, tag);
      assert.deepEqual(requests.map((r) => r.reply), ['HTTP 401'], 'requests to the model');
    },
  },
  {
    name: 'stream without [DONE]: the partial text, then RUN_ERROR model_protocol_error',
    async run(driver, ctx) {
      const { events } = await assertRunError(driver, ctx, {
        script: 'no_done',
        code: 'model_protocol_error',
        pattern: ['RUN_STARTED', 'TEXT_MESSAGE_START', 'TEXT_MESSAGE_CONTENT+', 'RUN_ERROR'],
      });
      assert.deepEqual(events.filter((e) => e.type === 'TEXT_MESSAGE_CONTENT').map((e) => e.delta), ['Partial', ' answ'], 'the partial text');
    },
  },
  {
    name: 'no request to the model holds any segment of a bearer token; each carries the configured API key',
    async run(driver, ctx) {
      const requests = await fetchRecordedRequests(ctx.mockOpenAiUrl);
      const mine = requests.filter((r) => typeof r.marker === 'string');
      assert.ok(mine.length >= OPENAI_SCENARIOS.length, `the mock recorded this suite's requests (${mine.length})`);
      // Both tokens come from one key, so they share their header segment.
      const segments = [...new Set([ctx.token, ctx.namedToken].flatMap((token) => token.split('.')))];
      const leaks = (text) => segments.filter((segment) => text.includes(segment));
      // Positive control: the detector finds every segment where the token is known to be.
      assert.deepEqual(leaks(`Authorization: Bearer ${ctx.token}`), ctx.token.split('.'), 'positive control');
      for (const request of requests) {
        const found = leaks(JSON.stringify({ path: request.path, headers: request.headers, body: request.body }));
        assert.equal(found.length, 0, `request #${request.seq} (${request.marker}) holds ${found.length} JWT segment(s)`);
        assert.equal(request.headers.authorization, `Bearer ${ctx.mockOpenAiKey}`, `request #${request.seq} Authorization`);
      }
    },
  },
]);

/**
 * Runs every OpenAI-provider scenario with `driver` (whose url is the OpenAI-backed agui-server),
 * reporting each as `openai: <name>`.
 *
 * @param {object} driver the suite's driver for ctx.openaiUrl
 * @param {object} ctx from suiteContext()
 * @param {{test: (name: string, fn: () => Promise<void>) => Promise<void>}} report
 */
export async function runOpenAiScenarios(driver, ctx, report) {
  for (const scenario of OPENAI_SCENARIOS) {
    await report.test(`openai: ${scenario.name}`, async () => {
      if (!ctx.openaiUrl || !ctx.mockOpenAiUrl || !ctx.mockOpenAiKey) {
        throw new Error('the OpenAI-backed agui-server or the mock is not running (AGUI_OPENAI_URL, AGUI_MOCK_OPENAI_URL, AGUI_MOCK_OPENAI_KEY unset)');
      }
      await scenario.run(driver, ctx);
    });
  }
}
