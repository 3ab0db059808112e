// Headless contract tests of direct mode (no browser, no hop): prove, with @copilotkit/core 1.74's
// CopilotKitCore (the client CopilotKitProvider drives) pointed straight at agui-server's
// `/copilotkit` (DESIGN "agui-server as the CopilotKit runtime (direct mode)"), that
//   1. `/info` lists the agents the caller may run (anonymous: those needing no role), CORS admits
//      the app's origin only, and a request without credentials gets 401 with a challenge;
//   2. on both transports (REST and single-route, CopilotKitCore's `runtimeTransport`), a run
//      authenticates with the token as `properties` only (recorded credential_source=body) and as
//      a header (credential_source=header); a new client instance (a reload) `connect`s and gets
//      the owner's words and the assistant's back; a client connecting during a run joins it and
//      ends with the whole reply; a stop ends the run, which agui-server records `cancelled`;
//   3. another user can neither connect to (replay), run on, stop, list nor read the owner's
//      thread (404 thread_not_found), and her messages never hold the owner's words, while the
//      owner can (the controls);
//   4. after agui-server restarts on the same SQLite file, the owner's thread still replays, and
//      is still refused to anyone else.

import { randomUUID } from 'node:crypto';

import { demoToken } from './contract.mjs';
import { assert, auditRecords, sseEvents } from './harness.mjs';

// @copilotkit/core skips /info when there is no window (shared/reference/copilotkit.md §6).
globalThis.window ??= globalThis;
const { CopilotKitCore } = await import('@copilotkit/core');

// Every request the client makes (and its status), so a test can prove which transport and
// which route it really used. CopilotKit calls the global fetch at request time.
/** @type {{method: string, url: string, body: string, status?: number}[]} */
const requests = [];
const realFetch = globalThis.fetch;
globalThis.fetch = async (input, init = {}) => {
  const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
  const entry = { method: init.method ?? (typeof input === 'object' && 'method' in input ? input.method : 'GET'), url, body: typeof init.body === 'string' ? init.body : '' };
  requests.push(entry);
  const response = await realFetch(input, init);
  entry.status = response.status;
  return response;
};

const TRANSPORTS = /** @type {const} */ (['rest', 'single']);

/**
 * A CopilotKitCore on agui-server's runtime, connected (its /info answered).
 *
 * @param {{runtimeUrl: string}} stack
 * @param {{token?: string, via?: 'properties'|'header', transport?: 'rest'|'single', threadId?: string}} options
 */
async function directCore(stack, { token, via = 'properties', transport = 'rest', threadId } = {}) {
  const errors = [];
  const core = new CopilotKitCore({
    runtimeUrl: stack.runtimeUrl,
    runtimeTransport: transport,
    properties: token && via === 'properties' ? { authorization: token } : {},
    headers: token && via === 'header' ? { Authorization: `Bearer ${token}` } : {},
  });
  core.subscribe({ onError: ({ error, code }) => errors.push({ code, message: error?.message ?? String(error) }) });
  await waitUntil(() => {
    assert(core.runtimeConnectionStatus !== 'error', `runtime /info failed: ${JSON.stringify(errors)}`);
    return core.runtimeConnectionStatus === 'connected';
  }, 'the runtime never connected');
  const agent = core.getAgent('default');
  assert(agent, 'no default agent');
  if (threadId) agent.threadId = threadId;
  return { core, agent, errors };
}

function assistantText(agent) {
  return agent.messages.filter((m) => m.role === 'assistant').map((m) => (typeof m.content === 'string' ? m.content : '')).join('\n');
}

async function say(core, agent, text) {
  agent.addMessage({ id: randomUUID(), role: 'user', content: text });
  await core.runAgent({ agent });
  return assistantText(agent);
}

// The app's Stop (web/src/App.tsx StoppableChat): CopilotKit's stop carries no `properties`, so
// the user's token goes on the agent's headers for that one synchronous call.
function stopWithToken(core, agent, token) {
  const previous = agent.headers;
  agent.headers = { ...previous, Authorization: `Bearer ${token}` };
  try {
    core.stopAgent({ agent });
  } finally {
    agent.headers = previous;
  }
}

// The client logs a refused request on console.error; expected where a test provokes one.
async function quietly(fn) {
  const consoleError = console.error;
  console.error = () => {};
  try {
    return await fn();
  } finally {
    console.error = consoleError;
  }
}

/** Polls `condition` (no fixed sleep) with a generous bound. */
async function waitUntil(condition, message, everyMs = 25, tries = 1200) {
  for (let i = 0; i < tries; i += 1) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
  throw new Error(message);
}

function runInput(threadId, text) {
  return { threadId, runId: randomUUID(), messages: text ? [{ id: randomUUID(), role: 'user', content: text }] : [], tools: [], context: [], state: {}, forwardedProps: {} };
}

/** A raw REST or single-route request to agui-server's runtime, the token as a header. */
function raw(stack, transport, { method, agentId = 'default', threadId, body, token }) {
  const headers = { 'content-type': 'application/json', accept: 'text/event-stream' };
  if (token) headers.authorization = `Bearer ${token}`;
  if (transport === 'single') {
    const params = threadId && method === 'agent/stop' ? { agentId, threadId } : { agentId };
    return realFetch(stack.runtimeUrl, { method: 'POST', headers, body: JSON.stringify({ method, params, body }) });
  }
  const path = method === 'agent/stop' ? `/agent/${agentId}/stop/${encodeURIComponent(threadId)}` : `/agent/${agentId}/${method.slice('agent/'.length)}`;
  return realFetch(`${stack.runtimeUrl}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
}

/** The requests `fn` made, by route: `run`, `connect`, `stop`, `info`, or `single:<method>`. */
async function routesOf(stack, fn) {
  const from = requests.length;
  await fn();
  return requests.slice(from).filter((r) => r.url.startsWith(stack.runtimeUrl)).map((r) => {
    if (r.url === stack.runtimeUrl) {
      const method = (() => {
        try {
          return JSON.parse(r.body).method;
        } catch {
          return '?';
        }
      })();
      return { route: `single:${method}`, status: r.status };
    }
    const rest = r.url.slice(stack.runtimeUrl.length);
    const route = /\/agent\/[^/]+\/(run|connect|stop)/.exec(rest)?.[1] ?? rest.replace(/^\//, '').split('?')[0];
    return { route, status: r.status };
  });
}

/**
 * The direct-mode contract, on a direct stack whose agui-server also has an admin-only agent
 * (`[agents.admins]`) and a SQLite file store.
 *
 * @param {import('./harness.mjs').Harness} h
 * @param {import('../scripts/stack.mjs').Stack} stack
 */
export async function runDirectContract(h, stack) {
  assert(stack.mode === 'direct' && stack.runtimeUrl === `${stack.aguiUrl}/copilotkit`, `not a direct stack: ${stack.runtimeUrl}`);
  const vera = await demoToken(stack, 'vera');
  const ada = await demoToken(stack, 'ada');

  await h.test("direct: the web server's /config.json points the app at agui-server's /copilotkit, /whoami and /copilotkit/threads, and nothing is served under /api", async () => {
    const config = await (await realFetch(`${stack.webUrl}/config.json`)).json();
    assert(config.mode === 'direct' && config.runtimeUrl === stack.runtimeUrl, `config: ${JSON.stringify(config)}`);
    assert(config.whoamiUrl === `${stack.aguiUrl}/whoami` && config.threadsUrl === `${stack.runtimeUrl}/threads`, `config: ${JSON.stringify(config)}`);
    for (const path of ['/api/copilotkit/info', '/api/whoami', '/api/threads']) {
      const response = await realFetch(`${stack.webUrl}${path}`, { headers: { authorization: `Bearer ${vera}` } });
      assert(response.status === 404, `GET ${path} on the web server: HTTP ${response.status}`);
    }
    // Control: what the app is pointed at answers.
    const whoami = await realFetch(config.whoamiUrl, { headers: { authorization: `Bearer ${vera}` } });
    assert(whoami.status === 200 && (await whoami.json()).subject === 'vera', `agui-server's /whoami: HTTP ${whoami.status}`);
  });

  await h.test('direct: GET /copilotkit/info lists the agents the caller may run (anonymous and the viewer: default only; the admin: also the admin-only agent)', async () => {
    const info = async (token) => {
      const response = await realFetch(`${stack.runtimeUrl}/info`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
      assert(response.status === 200, `info: HTTP ${response.status}`);
      return response.json();
    };
    const anonymous = await info();
    assert(anonymous.mode === 'sse' && anonymous.telemetryDisabled === true && anonymous.audioFileTranscriptionEnabled === false, `info: ${JSON.stringify(anonymous)}`);
    assert(anonymous.threadEndpoints?.list === true && anonymous.threadEndpoints?.mutations === false, `threadEndpoints: ${JSON.stringify(anonymous.threadEndpoints)}`);
    assert(JSON.stringify(Object.keys(anonymous.agents)) === '["default"]', `anonymous agents: ${Object.keys(anonymous.agents)}`);
    assert(JSON.stringify(Object.keys((await info(vera)).agents)) === '["default"]', 'the viewer is offered the admin-only agent');
    assert(JSON.stringify(Object.keys((await info(ada)).agents).sort()) === '["admins","default"]', 'the admin is not offered the admin-only agent');
    // And the client the app uses, before any token exists (the page must not go blank).
    const { agent } = await directCore(stack);
    assert(agent.agentId === 'default', `agent: ${agent.agentId}`);
  });

  await h.test("direct: CORS admits the app's origin with Authorization (preflight and response) and no other origin", async () => {
    const preflight = (origin) =>
      realFetch(`${stack.runtimeUrl}/agent/default/run`, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
      });
    const allowed = await preflight(stack.webUrl);
    const headers = (allowed.headers.get('access-control-allow-headers') ?? '').toLowerCase();
    assert(allowed.ok && allowed.headers.get('access-control-allow-origin') === stack.webUrl, `preflight from the app: HTTP ${allowed.status}, ${allowed.headers.get('access-control-allow-origin')}`);
    assert(headers.includes('authorization') && headers.includes('content-type'), `allowed headers: ${headers}`);
    const info = await realFetch(`${stack.runtimeUrl}/info`, { headers: { origin: stack.webUrl } });
    assert(info.headers.get('access-control-allow-origin') === stack.webUrl, 'the app cannot read /info');
    const other = await preflight('http://evil.example');
    assert(other.headers.get('access-control-allow-origin') === null, `another origin is allowed: ${other.headers.get('access-control-allow-origin')}`);
  });

  await h.test('direct: without credentials run, connect, stop and threads get 401 with a WWW-Authenticate challenge, and the client reports "HTTP 401"; the same run with a token streams (control)', async () => {
    const threadId = randomUUID();
    for (const [what, response] of [
      ['run', await raw(stack, 'rest', { method: 'agent/run', body: runInput(threadId, 'hello') })],
      ['run (single-route)', await raw(stack, 'single', { method: 'agent/run', body: runInput(threadId, 'hello') })],
      ['connect', await raw(stack, 'rest', { method: 'agent/connect', body: runInput(threadId) })],
      ['stop', await raw(stack, 'rest', { method: 'agent/stop', threadId, body: {} })],
      ['threads', await realFetch(`${stack.runtimeUrl}/threads`)],
    ]) {
      const text = await response.text();
      assert(response.status === 401, `${what} without credentials: HTTP ${response.status} ${text.slice(0, 200)}`);
      assert(/^Bearer realm=/.test(response.headers.get('www-authenticate') ?? ''), `${what}: challenge ${response.headers.get('www-authenticate')}`);
    }
    const { core, agent, errors } = await directCore(stack);
    await quietly(() => say(core, agent, 'hello without a token').catch(() => {}));
    assert(errors.some((e) => e.message.startsWith('HTTP 401:')), `onError: ${JSON.stringify(errors)}`);
    const control = await raw(stack, 'rest', { method: 'agent/run', body: runInput(threadId, 'hello with a token'), token: vera });
    const events = sseEvents(await control.text());
    assert(control.status === 200 && events.at(-1)?.type === 'RUN_FINISHED', `with a token: HTTP ${control.status} ${events.map((e) => e.type)}`);
  });

  /** @type {Record<string, {threadId: string, secret: string}>} */
  const owned = {};
  for (const transport of TRANSPORTS) {
    const single = transport === 'single';
    await h.test(`direct (${transport}): a run with the token only in properties streams the reply, over the ${single ? 'single-route' : 'REST'} transport; agui-server recorded credential_source=body`, async () => {
      const secret = `ada's ${transport} secret ${randomUUID().slice(0, 8)}`;
      const { core, agent, errors } = await directCore(stack, { token: ada, transport });
      let reply = '';
      const routes = await routesOf(stack, async () => {
        reply = await say(core, agent, secret);
      });
      assert(errors.length === 0 && reply.includes(`Hello, Ada Lovelace! You said: "${secret}"`), `reply: ${reply} ${JSON.stringify(errors)}`);
      const expected = single ? 'single:agent/run' : 'run';
      assert(routes.some((r) => r.route === expected && r.status === 200) && routes.every((r) => r.route.startsWith('single:') === single), `requests: ${JSON.stringify(routes)}`);
      const runs = auditRecords(stack, { kind: 'run_started', thread: agent.threadId });
      assert(runs.length === 1 && runs[0].subject === 'ada' && runs[0].detail?.credential_source === 'body', `run record: ${JSON.stringify(runs)}`);
      owned[transport] = { threadId: agent.threadId, secret };
    });

    await h.test(`direct (${transport}): a run with the token as an Authorization header (the provider's headers) streams; recorded credential_source=header`, async () => {
      const { core, agent, errors } = await directCore(stack, { token: vera, via: 'header', transport });
      const reply = await say(core, agent, `header run ${transport}`);
      assert(errors.length === 0 && reply.includes(`Hello, Vera Viewer! You said: "header run ${transport}"`), `reply: ${reply} ${JSON.stringify(errors)}`);
      const runs = auditRecords(stack, { kind: 'run_started', thread: agent.threadId });
      assert(runs.length === 1 && runs[0].subject === 'vera' && runs[0].detail?.credential_source === 'header', `run record: ${JSON.stringify(runs)}`);
    });

    await h.test(`direct (${transport}): reload → a new CopilotKitCore connects to the thread and gets the owner's words and the assistant's reply back`, async () => {
      const mine = owned[transport];
      assert(mine, 'no owner run (see the properties test)');
      const { core, agent, errors } = await directCore(stack, { token: ada, transport, threadId: mine.threadId });
      assert(agent.messages.length === 0, 'the new client already holds messages');
      const routes = await routesOf(stack, () => core.connectAgent({ agent }));
      assert(routes.some((r) => r.route === (single ? 'single:agent/connect' : 'connect') && r.status === 200), `requests: ${JSON.stringify(routes)}`);
      const user = agent.messages.filter((m) => m.role === 'user').map((m) => m.content);
      assert(JSON.stringify(user) === JSON.stringify([mine.secret]), `user messages replayed: ${JSON.stringify(user)}`);
      assert(assistantText(agent) === `Hello, Ada Lovelace! You said: "${mine.secret}"`, `assistant replayed: ${assistantText(agent)}`);
      assert(errors.length === 0, `onError: ${JSON.stringify(errors)}`);
      // A thread nobody ran on: 200 and nothing (a "New chat" connects like this).
      const fresh = await directCore(stack, { token: ada, transport, threadId: randomUUID() });
      await fresh.core.connectAgent({ agent: fresh.agent });
      assert(fresh.agent.messages.length === 0 && fresh.errors.length === 0, `a new thread replayed ${JSON.stringify(fresh.agent.messages)} ${JSON.stringify(fresh.errors)}`);
    });

    await h.test(`direct (${transport}): a client connecting during a run joins it and ends with the whole reply`, async () => {
      const deltas = 60;
      const size = 16;
      const text = `/stream ${deltas} ${size} 50`;
      const first = await directCore(stack, { token: vera, transport });
      let ended = false;
      const running = say(first.core, first.agent, text).finally(() => {
        ended = true;
      });
      // The run is streaming (its first deltas arrived): the cause the join waits for.
      await waitUntil(() => assistantText(first.agent).length >= 2 * size, 'the run never streamed');
      const second = await directCore(stack, { token: vera, transport, threadId: first.agent.threadId });
      assert(!ended, 'the run ended before the second client connected (the test would prove only a replay)');
      await second.core.connectAgent({ agent: second.agent });
      const whole = await running;
      assert(whole.length === deltas * size, `the first client's reply has ${whole.length} of ${deltas * size} characters`);
      assert(assistantText(second.agent) === whole, `the joined reply has ${assistantText(second.agent).length} of ${whole.length} characters`);
      const user = second.agent.messages.filter((m) => m.role === 'user').map((m) => m.content);
      assert(JSON.stringify(user) === JSON.stringify([text]), `the joined client's user messages: ${JSON.stringify(user)}`);
      assert(first.errors.length === 0 && second.errors.length === 0, `onError: ${JSON.stringify([...first.errors, ...second.errors])}`);
    });

    await h.test(`direct (${transport}): stop ends the run (the client's run returns with part of the reply) and agui-server records it cancelled`, async () => {
      const deltas = 400;
      const size = 16;
      const since = Date.now();
      const { core, agent, errors } = await directCore(stack, { token: vera, transport });
      const running = say(core, agent, `/stream ${deltas} ${size} 50`);
      await waitUntil(() => assistantText(agent).length >= 2 * size, 'the run never streamed');
      const routes = await routesOf(stack, async () => {
        const from = requests.length;
        stopWithToken(core, agent, vera);
        // Returns only when agui-server ends the run's stream (the client does not end it itself).
        await running.catch(() => {});
        // CopilotKit sends the stop without waiting for its answer; wait for that answer.
        const isStop = (r) => (single ? r.url === stack.runtimeUrl && r.body.includes('"agent/stop"') : r.url.includes('/stop/'));
        await waitUntil(() => requests.slice(from).some((r) => isStop(r) && r.status !== undefined), 'the stop was not answered');
      });
      const stop = routes.find((r) => r.route === (single ? 'single:agent/stop' : 'stop'));
      assert(stop?.status === 200, `stop requests: ${JSON.stringify(routes)}`);
      const reply = assistantText(agent);
      assert(/^a+b+/.test(reply) && reply.length < deltas * size, `the reply after the stop has ${reply.length} of ${deltas * size} characters`);
      let ended = [];
      await waitUntil(() => {
        ended = auditRecords(stack, { kind: 'run_ended', thread: agent.threadId, since });
        return ended.length > 0;
      }, 'agui-server recorded no end of the run', 200, 150);
      assert(ended.length === 1 && ended[0].detail?.outcome === 'cancelled', `agui-server recorded: ${JSON.stringify(ended.map((r) => r.detail))}`);
      assert(errors.length === 0, `onError: ${JSON.stringify(errors)}`);
    });
  }

  await h.test("direct: another user's connect to the owner's thread is refused (404 thread_not_found, both transports) and replays nothing; the owner's replays it (control)", async () => {
    const { threadId, secret } = owned.rest;
    for (const transport of TRANSPORTS) {
      const owner = await raw(stack, transport, { method: 'agent/connect', body: runInput(threadId), token: ada });
      const ownerText = await owner.text();
      assert(owner.status === 200 && ownerText.includes(secret), `the owner's connect (${transport}): HTTP ${owner.status}; the negative test would prove nothing`);
      const other = await raw(stack, transport, { method: 'agent/connect', body: runInput(threadId), token: vera });
      const text = await other.text();
      assert(other.status === 404 && JSON.parse(text).error === 'thread_not_found', `vera's connect (${transport}): HTTP ${other.status} ${text}`);
      assert(!text.includes(secret), 'the refusal leaked the thread');
    }
    // Through the client the app uses, with the token as properties.
    const { core, agent, errors } = await directCore(stack, { token: vera, threadId });
    await quietly(() => core.connectAgent({ agent }).catch(() => {}));
    assert(!JSON.stringify(agent.messages).includes(secret), "the owner's words reached the other user");
    assert(errors.some((e) => e.message.startsWith('HTTP 404:') && e.message.includes('thread_not_found')), `onError: ${JSON.stringify(errors)}`);
  });

  await h.test("direct: another user cannot run on or stop the owner's thread (404, both transports); her thread list and messages never hold the owner's words; the owner's stop is answered (control)", async () => {
    const { threadId, secret } = owned.rest;
    for (const transport of TRANSPORTS) {
      const run = await raw(stack, transport, { method: 'agent/run', body: runInput(threadId, 'what did ada say?'), token: vera });
      const runText = await run.text();
      assert(run.status === 404 && JSON.parse(runText).error === 'thread_not_found' && !runText.includes(secret), `vera's run (${transport}): HTTP ${run.status} ${runText}`);
      const stop = await raw(stack, transport, { method: 'agent/stop', threadId, body: {}, token: vera });
      const stopText = await stop.text();
      assert(stop.status === 404 && JSON.parse(stopText).error === 'thread_not_found', `vera's stop (${transport}): HTTP ${stop.status} ${stopText}`);
      const ownerStop = await raw(stack, transport, { method: 'agent/stop', threadId, body: {}, token: ada });
      const ownerText = await ownerStop.text();
      assert(ownerStop.status === 200 && JSON.parse(ownerText).stopped === false, `ada's stop (${transport}): HTTP ${ownerStop.status} ${ownerText}`);
    }
    // The client: her run on that thread fails visibly and nothing of the owner's appears.
    const { core, agent, errors } = await directCore(stack, { token: vera, threadId });
    const reply = await quietly(() => say(core, agent, 'show me the history').catch(() => ''));
    assert(!reply.includes(secret) && !JSON.stringify(agent.messages).includes(secret), "the owner's words reached the other user");
    assert(errors.some((e) => e.message.startsWith('HTTP 404:') && e.message.includes('thread_not_found')), `onError: ${JSON.stringify(errors)}`);
    // Her own threads: listed without the owner's; the owner's thread's messages are refused.
    const list = async (token) => (await (await realFetch(`${stack.runtimeUrl}/threads`, { headers: { authorization: `Bearer ${token}` } })).json()).threads;
    const hers = await list(vera);
    assert(hers.length > 0 && !hers.some((t) => t.id === threadId) && !JSON.stringify(hers).includes(secret), `vera's list: ${JSON.stringify(hers).slice(0, 300)}`);
    const adas = await list(ada);
    assert(adas.some((t) => t.id === threadId && t.name === secret), `ada's list lacks her thread: ${JSON.stringify(adas).slice(0, 300)}`);
    for (const part of ['messages', 'events', 'state']) {
      const response = await realFetch(`${stack.runtimeUrl}/threads/${threadId}/${part}`, { headers: { authorization: `Bearer ${vera}` } });
      const text = await response.text();
      assert(response.status === 404 && !text.includes(secret), `vera's GET /threads/…/${part}: HTTP ${response.status}`);
    }
    const ownMessages = await realFetch(`${stack.runtimeUrl}/threads/${threadId}/messages`, { headers: { authorization: `Bearer ${ada}` } });
    assert(ownMessages.status === 200 && (await ownMessages.text()).includes(secret), "ada's own messages are not served (control)");
  });

  await h.test("direct: after agui-server restarts on the same SQLite file, a new client's connect still replays the owner's thread, and another user's is still refused", async () => {
    assert(/^sqlite:\/\/\/.+\.db/.test(stack.databaseUrl) || stack.databaseUrl.startsWith('postgres'), `the store is not durable: ${stack.databaseUrl}`);
    const { threadId, secret } = owned.rest;
    await stack.restartAgui({});
    const { core, agent, errors } = await directCore(stack, { token: ada, threadId });
    await core.connectAgent({ agent });
    assert(agent.messages.some((m) => m.role === 'user' && m.content === secret), `after the restart: ${JSON.stringify(agent.messages).slice(0, 300)} ${JSON.stringify(errors)}`);
    assert(assistantText(agent) === `Hello, Ada Lovelace! You said: "${secret}"`, `assistant after the restart: ${assistantText(agent)}`);
    const other = await raw(stack, 'rest', { method: 'agent/connect', body: runInput(threadId), token: vera });
    const text = await other.text();
    assert(other.status === 404 && !text.includes(secret), `vera's connect after the restart: HTTP ${other.status}`);
  });
}
