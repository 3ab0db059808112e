// Headless contract tests of the runtime hop (no browser): prove, with @copilotkit/core's client
// (the same code CopilotKitProvider drives) talking to the real runtime (web/server) in front of
// the real agui-server and IdP, that
//   1. a token given only as `properties.authorization` reaches agui-server as an Authorization
//      HEADER (the stack runs with agui-server's body token source switched off, so a run that
//      succeeds could not have used the body copy), and agui-server's record of that run says
//      `credential_source=header`;
//   2. the hop forwards only `authorization` to agui-server (the `forwardHeaders` allowlist): a
//      recording proxy between a second hop and agui-server sees no Cookie, X-* header or their
//      values on /chat (or /whoami), while the run succeeds with the Authorization header;
//   2b. a bad token surfaces in onError as `HTTP 401: …` (what the app turns into "sign in again");
//   3. the hop does not leak threads: user B can neither connect to (replay), run on, stop, list
//      nor read user A's thread (404 thread_not_found, as agui-server answers), while A can (the
//      positive control shows the replay really holds A's words, so the refusals are meaningful);
//   4. (runRefusalContract) when agui-server ITSELF refuses a run the hop let through (403
//      access_denied, 429 rate_limited, 401 invalid_token), CopilotKit's runtime answers
//      HTTP 200 with a RUN_ERROR whose message is `HTTP <status>: <agui-server's JSON>`, and the
//      client's onError gets that message.

import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer, request as httpRequest } from 'node:http';
import { createInterface } from 'node:readline';

import { DEMO_ACCOUNTS, signInWithPassword } from '../../tests/idp/demo.mjs';
import { WEB_DIR } from '../scripts/stack.mjs';
import { assert, auditRecords, chatDirect, sseEvents } from './harness.mjs';

// @copilotkit/core skips the runtime's /info on the server ("typeof window === 'undefined'"),
// leaving no agents (shared/reference/copilotkit.md §6 gotcha 1).
globalThis.window ??= globalThis;
const { CopilotKitCore } = await import('@copilotkit/core');

/** Signs a demo user in headlessly and returns the access token. */
export async function demoToken(stack, login) {
  const result = await signInWithPassword({ issuer: stack.issuer, appOrigin: stack.webUrl, login, password: DEMO_ACCOUNTS[login].password });
  assert(!result.refused && result.tokens?.access_token, `${login} could not sign in`);
  return result.tokens.access_token;
}

async function connectedCore({ runtimeUrl, properties, errors }) {
  const core = new CopilotKitCore({ runtimeUrl, properties });
  core.subscribe({ onError: ({ error, code }) => errors.push({ code, message: error?.message ?? String(error) }) });
  for (let i = 0; i < 200 && core.runtimeConnectionStatus !== 'connected'; i += 1) {
    assert(core.runtimeConnectionStatus !== 'error', 'runtime /info failed');
    await new Promise((r) => setTimeout(r, 25));
  }
  const agent = core.getAgent('default');
  assert(agent, `no default agent (runtime status ${core.runtimeConnectionStatus})`);
  return { core, agent };
}

async function say(core, agent, text) {
  agent.addMessage({ id: randomUUID(), role: 'user', content: text });
  await core.runAgent({ agent });
  const last = [...agent.messages].reverse().find((m) => m.role === 'assistant');
  return typeof last?.content === 'string' ? last.content : '';
}

// The client logs a refused run on console.error ("Agent execution failed: …"); expected where a
// test provokes one, so it is kept out of the test output there.
async function quietly(fn) {
  const consoleError = console.error;
  console.error = () => {};
  try {
    return await fn();
  } finally {
    console.error = consoleError;
  }
}

function runtimeRequest(stack, path, { token, viaProperties = false, body, method = 'POST' }) {
  const headers = { 'content-type': 'application/json', accept: 'text/event-stream' };
  if (token && !viaProperties) headers.authorization = `Bearer ${token}`;
  const payload = body && viaProperties ? { ...body, forwardedProps: { authorization: token } } : body;
  return fetch(`${stack.webUrl}/api/copilotkit${path}`, { method, headers, body: payload ? JSON.stringify(payload) : undefined });
}

function connectBody(threadId) {
  return { threadId, runId: randomUUID(), messages: [], tools: [], context: [], state: {}, forwardedProps: {} };
}

/**
 * Runs the contract tests against a started stack whose agui-server has AGUI_ACCEPT_BODY_TOKEN=false.
 *
 * @param {import('./harness.mjs').Harness} h
 * @param {{webUrl: string, aguiUrl: string, issuer: string}} stack
 */
export async function runContract(h, stack) {
  const runtimeUrl = `${stack.webUrl}/api/copilotkit`;
  const vera = await demoToken(stack, 'vera');
  const ada = await demoToken(stack, 'ada');

  await h.test('contract: agui-server refuses a body-only token on this stack (control for the header test)', async () => {
    // Straight to /chat with the token only in forwardedProps: the body source is off here.
    const response = await fetch(`${stack.aguiUrl}/chat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ threadId: 't', runId: 'r', messages: [{ id: 'm', role: 'user', content: 'hi' }], forwardedProps: { authorization: vera } }),
    });
    assert(response.status === 401, `expected 401, got ${response.status}`);
    const direct = await chatDirect(stack.aguiUrl, vera, 'hello');
    assert(direct.status === 200, `the same token in the header: ${direct.status}`);
  });

  await h.test('contract: CopilotKitCore with properties={authorization} only → header reaches agui-server, reply streams, the run is recorded with credential_source=header', async () => {
    const errors = [];
    const { core, agent } = await connectedCore({ runtimeUrl, properties: { authorization: vera }, errors });
    const reply = await say(core, agent, 'hello from the contract test');
    assert(errors.length === 0, `onError: ${JSON.stringify(errors)}`);
    assert(reply.includes('Hello, Vera Viewer!') && reply.includes('hello from the contract test'), `reply: ${reply}`);
    // agui-server's own record of this run (not a counter that /whoami also bumps).
    const runs = auditRecords(stack, { kind: 'run_started', thread: agent.threadId });
    assert(runs.length === 1, `run_started records for the thread: ${runs.length}`);
    assert(runs[0].subject === 'vera' && runs[0].detail?.credential_source === 'header', `run record: ${JSON.stringify(runs[0])}`);
  });

  await h.test('contract: the hop forwards only Authorization to agui-server (Cookie, X-Api-Key, X-Forwarded-For, X-Tenant stay behind), whether the token came as a header or as properties', async () => {
    // A second hop (the real web/server CLI) whose agui-server is a recording proxy in front of
    // this stack's agui-server, so the test sees exactly what agui-server receives.
    const proxy = await recordingProxy(stack.aguiUrl);
    const hop = await startHop(proxy.url, stack.issuer);
    try {
      const extras = { cookie: `session=cookie-${randomUUID()}`, 'x-api-key': `key-${randomUUID()}`, 'x-forwarded-for': '203.0.113.7', 'x-tenant': `tenant-${randomUUID()}` };
      const leaked = (headers) => Object.keys(headers).filter((name) => name === 'cookie' || name.startsWith('x-') || Object.values(extras).some((v) => String(headers[name]).includes(v)));
      // Control: these headers do go out from this client and the recorder sees them.
      await fetch(`${proxy.url}/whoami`, { headers: extras });
      assert(leaked(proxy.seen.at(-1).headers).length === Object.keys(extras).length, `the recorder saw ${Object.keys(proxy.seen.at(-1).headers)}`);

      for (const viaProperties of [false, true]) {
        const from = proxy.seen.length;
        const message = `forwarding check ${viaProperties ? 'properties' : 'header'}`;
        const headers = { 'content-type': 'application/json', accept: 'text/event-stream', ...extras };
        if (!viaProperties) headers.authorization = `Bearer ${vera}`;
        const body = { ...connectBody(randomUUID()), messages: [{ id: randomUUID(), role: 'user', content: message }] };
        if (viaProperties) body.forwardedProps = { authorization: vera };
        const response = await fetch(`${hop.url}/api/copilotkit/agent/default/run`, { method: 'POST', headers, body: JSON.stringify(body) });
        const events = sseEvents(await response.text());
        const text = events.filter((e) => e.type === 'TEXT_MESSAGE_CONTENT').map((e) => e.delta).join('');
        // Positive control: the run succeeded (on this stack only a header token is accepted).
        assert(response.status === 200 && events.some((e) => e.type === 'RUN_FINISHED') && text.includes('Hello, Vera Viewer!'), `run (${message}): HTTP ${response.status}, ${events.map((e) => e.type).join(',')}`);
        const chats = proxy.seen.slice(from).filter((r) => r.method === 'POST' && r.path === '/chat');
        assert(chats.length === 1, `POST /chat requests seen for ${message}: ${chats.length}`);
        assert(chats[0].headers.authorization === `Bearer ${vera}`, `${message}: /chat got ${chats[0].headers.authorization ? 'another' : 'no'} Authorization header`);
        // Nothing else from the browser: neither on /chat nor on the hop's own /whoami checks.
        for (const seen of proxy.seen.slice(from)) {
          assert(leaked(seen.headers).length === 0, `${message}: ${seen.method} ${seen.path} received ${leaked(seen.headers).join(', ')}`);
        }
      }
    } finally {
      await hop.stop();
      await proxy.close();
    }
  });

  await h.test('contract: an invalid token surfaces in onError as "HTTP 401: …invalid_token…"', async () => {
    const errors = [];
    const { core, agent } = await connectedCore({ runtimeUrl, properties: { authorization: 'e30.e30.not-a-signature' }, errors });
    await quietly(() => say(core, agent, 'hello').catch(() => {}));
    const seen = errors.find((e) => e.message.startsWith('HTTP 401:'));
    assert(seen, `no HTTP 401 error, got ${JSON.stringify(errors)}`);
    assert(/invalid_token|unauthorized/.test(seen.message), `no error code in ${seen.message}`);
  });

  // Thread-leak tests: ada owns a thread with a recognisable sentence in it.
  const secret = `ada's secret plan ${randomUUID().slice(0, 8)}`;
  const errors = [];
  const { core: adaCore, agent: adaAgent } = await connectedCore({ runtimeUrl, properties: { authorization: ada }, errors });
  const threadId = adaAgent.threadId;
  const adaReply = await say(adaCore, adaAgent, secret);

  await h.test("thread leak (control): the owner's connect replays her own thread", async () => {
    assert(adaReply.includes('Hello, Ada Lovelace!'), `ada's run failed: ${adaReply} ${JSON.stringify(errors)}`);
    const response = await runtimeRequest(stack, '/agent/default/connect', { token: ada, viaProperties: true, body: connectBody(threadId) });
    const text = await response.text();
    assert(response.status === 200, `connect: HTTP ${response.status}`);
    assert(text.includes(secret), 'the replay does not contain the thread (the negative tests would prove nothing)');
  });

  await h.test("thread leak: another user cannot connect to (replay) someone else's thread", async () => {
    for (const viaProperties of [true, false]) {
      const response = await runtimeRequest(stack, '/agent/default/connect', { token: vera, viaProperties, body: connectBody(threadId) });
      const text = await response.text();
      assert(response.status === 404, `connect as vera (${viaProperties ? 'properties' : 'header'}): HTTP ${response.status}`);
      assert(JSON.parse(text).error === 'thread_not_found', `refusal: ${text}`);
      assert(!text.includes(secret), 'the refusal leaked the thread');
    }
  });

  await h.test("thread leak: another user cannot run on someone else's thread", async () => {
    const body = { ...connectBody(threadId), messages: [{ id: randomUUID(), role: 'user', content: 'what did ada say?' }] };
    const response = await runtimeRequest(stack, '/agent/default/run', { token: vera, viaProperties: true, body });
    const text = await response.text();
    assert(response.status === 404, `run as vera: HTTP ${response.status}`);
    assert(!text.includes(secret) && !/another user|belongs/i.test(text), `the refusal leaked the thread or its existence: ${text}`);
    // And through the client the app uses: the run fails visibly, nothing from ada's thread appears.
    const veraErrors = [];
    const { core, agent } = await connectedCore({ runtimeUrl, properties: { authorization: vera }, errors: veraErrors });
    agent.threadId = threadId;
    const reply = await quietly(() => say(core, agent, 'show me the history').catch(() => ''));
    assert(!reply.includes(secret) && !JSON.stringify(agent.messages).includes(secret), 'ada\'s words reached vera');
    assert(veraErrors.some((e) => e.message.startsWith('HTTP 404:') && e.message.includes('thread_not_found')), `no HTTP 404 in onError: ${JSON.stringify(veraErrors)}`);
  });

  await h.test("thread leak: another user cannot stop someone else's thread; a stop without a token gets 401; the owner's passes (control)", async () => {
    const stop = await runtimeRequest(stack, `/agent/default/stop/${threadId}`, { token: vera, body: {} });
    assert(stop.status === 404, `stop as vera: HTTP ${stop.status}`);
    // CopilotKit's own stop request: no Authorization, `{runId}` as the body, no properties.
    const anonymousStop = await runtimeRequest(stack, `/agent/default/stop/${threadId}`, { body: { runId: randomUUID() } });
    assert(anonymousStop.status === 401, `stop without a token: HTTP ${anonymousStop.status}`);
    // Control: the owner's stop with her token passes the hop and reaches the runtime, which
    // answers that nothing is running on the thread any more.
    const ownerStop = await runtimeRequest(stack, `/agent/default/stop/${threadId}`, { token: ada, body: {} });
    const ownerText = await ownerStop.text();
    assert(ownerStop.status === 200 && JSON.parse(ownerText).stopped === false, `stop as ada: HTTP ${ownerStop.status} ${ownerText}`);
    const anonymous = await runtimeRequest(stack, '/agent/default/connect', { body: connectBody(threadId) });
    assert(anonymous.status === 401, `connect without a token: HTTP ${anonymous.status}`);
    assert(/^Bearer/.test(anonymous.headers.get('www-authenticate') ?? ''), 'no WWW-Authenticate challenge');
  });

  await h.test("hop: the app's /api/threads lists the caller's threads from agui-server (the owner sees hers; another user does not; no token: 401)", async () => {
    const list = async (token) => {
      const response = await fetch(`${stack.webUrl}/api/threads`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
      return { status: response.status, body: await response.text() };
    };
    const owner = await list(ada);
    assert(owner.status === 200 && JSON.parse(owner.body).threads.some((t) => t.id === threadId && t.name === secret), `ada's list: HTTP ${owner.status} ${owner.body.slice(0, 200)}`);
    const other = await list(vera);
    assert(other.status === 200 && !other.body.includes(threadId) && !other.body.includes(secret), `vera's list: HTTP ${other.status} ${other.body.slice(0, 200)}`);
    const anonymous = await list();
    assert(anonymous.status === 401, `no token: HTTP ${anonymous.status}`);
  });

  await h.test("thread leak: the runtime's thread listing and message routes are not offered", async () => {
    for (const path of ['/threads', `/threads/${threadId}/messages`, `/threads/${threadId}/events`]) {
      const response = await runtimeRequest(stack, path, { token: vera, method: 'GET' });
      const text = await response.text();
      assert(response.status === 404, `GET ${path}: HTTP ${response.status}`);
      assert(!text.includes(secret), `GET ${path} leaked the thread`);
    }
  });
}

/**
 * A transparent loopback reverse proxy to `target` that records every request's method, path and
 * headers (as agui-server would receive them); responses, SSE included, stream through unchanged.
 *
 * @param {string} target base URL
 * @returns {Promise<{url: string, seen: {method: string, path: string, headers: Record<string, string>}[], close: () => Promise<void>}>}
 */
async function recordingProxy(target) {
  const upstream = new URL(target);
  const seen = [];
  const server = createServer((req, res) => {
    seen.push({ method: req.method, path: req.url, headers: { ...req.headers } });
    const forward = httpRequest(
      { hostname: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: { ...req.headers, host: upstream.host } },
      (answer) => {
        res.writeHead(answer.statusCode, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  await new Promise((resolveListen) => server.listen(0, '127.0.0.1', resolveListen));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    seen,
    close: () =>
      new Promise((resolveClose) => {
        server.close(() => resolveClose());
        server.closeAllConnections();
      }),
  };
}

/**
 * Starts another runtime hop (web/server/index.mjs, as scripts/stack.mjs does) in front of `aguiUrl`.
 *
 * @returns {Promise<{url: string, stop: () => Promise<void>}>}
 */
async function startHop(aguiUrl, issuer) {
  const child = spawn(process.execPath, [`${WEB_DIR}/server/index.mjs`, '--mode', 'hop', '--port', '0', '--agui-url', aguiUrl, '--issuer', issuer, '--exit-on-stdin-close'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const stderr = [];
  createInterface({ input: child.stderr }).on('line', (line) => stderr.push(line));
  const exited = new Promise((resolveExit) => child.once('exit', resolveExit));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  try {
    const url = await new Promise((resolveUrl, reject) => {
      child.once('exit', (code) => reject(new Error(`the hop exited (code ${code}): ${stderr.slice(-5).join(' | ')}`)));
      createInterface({ input: child.stdout }).on('line', (line) => {
        if (line.startsWith('{"url"')) resolveUrl(JSON.parse(line).url);
      });
    });
    return { url, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** One run through the runtime with the token only in `forwardedProps` (as the app sends it); the SSE events. */
async function runViaRuntime(stack, token, text) {
  const body = { ...connectBody(randomUUID()), messages: [{ id: randomUUID(), role: 'user', content: text }] };
  const response = await runtimeRequest(stack, '/agent/default/run', { token, viaProperties: true, body });
  const raw = await response.text();
  const events = raw
    .split('\n\n')
    .map((frame) => frame.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).join(''))
    .filter(Boolean)
    .map((data) => JSON.parse(data));
  return { status: response.status, contentType: response.headers.get('content-type') ?? '', events };
}

// agui-server's refusal as the runtime delivers it: HTTP 200, an SSE stream, one RUN_ERROR whose
// message is "HTTP <status>: <agui-server's JSON body>". (The hop's own refusals are non-200.)
function assertRunError(run, status, code) {
  assert(run.status === 200 && run.contentType.includes('text/event-stream'), `the runtime answered HTTP ${run.status} (${run.contentType}): not agui-server's refusal through the runtime`);
  const error = run.events.find((e) => e.type === 'RUN_ERROR');
  assert(error, `no RUN_ERROR in ${JSON.stringify(run.events).slice(0, 300)}`);
  assert(error.message.startsWith(`HTTP ${status}:`), `RUN_ERROR message: ${error.message}`);
  const body = JSON.parse(error.message.slice(`HTTP ${status}:`.length));
  assert(body.error === code, `agui-server's code: ${JSON.stringify(body)}`);
  assert(!run.events.some((e) => e.type === 'TEXT_MESSAGE_CONTENT'), 'the refused run produced text');
}

/**
 * agui-server's own refusals through the runtime, on a stack whose `default` agent requires the
 * `admin` role (the viewer's verified token passes the hop but not agui-server) and whose rate
 * limit is one run a minute with a burst of one. Runs before the browser refusal tests.
 *
 * @param {import('./harness.mjs').Harness} h
 * @param {{webUrl: string, aguiUrl: string, issuer: string}} stack
 */
export async function runRefusalContract(h, stack) {
  const runtimeUrl = `${stack.webUrl}/api/copilotkit`;
  const vera = await demoToken(stack, 'vera');
  const ada = await demoToken(stack, 'ada');

  await h.test("contract (agui-server refuses): the viewer's run on an admin-only agent gets agui-server's 403 access_denied as HTTP 200 + RUN_ERROR \"HTTP 403: …access_denied…\" in onError", async () => {
    // Control: the hop verifies vera (so a refusal cannot be the hop's own).
    const whoami = await fetch(`${stack.webUrl}/api/whoami`, { headers: { authorization: `Bearer ${vera}` } });
    assert(whoami.status === 200, `vera's /whoami: HTTP ${whoami.status}`);
    const since = Date.now();
    // A missing role is access_denied: insufficient_scope would name a scope the client cannot ask for.
    assertRunError(await runViaRuntime(stack, vera, 'hello from a viewer'), 403, 'access_denied');
    const errors = [];
    const { core, agent } = await connectedCore({ runtimeUrl, properties: { authorization: vera }, errors });
    await quietly(() => say(core, agent, 'hello again').catch(() => {}));
    const seen = errors.find((e) => e.message.startsWith('HTTP 403:'));
    assert(seen && seen.message.includes('"access_denied"'), `onError: ${JSON.stringify(errors)}`);
    // The cause, in agui-server's audit log: the agent's access rule.
    const denials = auditRecords(stack, { kind: 'access_denied', since }).filter((r) => r.subject === 'vera' && r.detail?.reason === 'agent_access');
    assert(denials.length === 2, `agent_access denials recorded for vera: ${denials.length}`);
  });

  await h.test('contract (agui-server refuses): over the rate limit, agui-server\'s 429 arrives as RUN_ERROR "HTTP 429: …rate_limited…" in onError (the admin\'s first run is the control)', async () => {
    const errors = [];
    const { core, agent } = await connectedCore({ runtimeUrl, properties: { authorization: ada }, errors });
    const reply = await say(core, agent, 'my one run this minute');
    assert(errors.length === 0 && reply.includes('Hello, Ada Lovelace!'), `the admin's first run: ${reply} ${JSON.stringify(errors)}`);
    assertRunError(await runViaRuntime(stack, ada, 'one run too many'), 429, 'rate_limited');
    await quietly(() => say(core, agent, 'and another').catch(() => {}));
    const seen = errors.find((e) => e.message.startsWith('HTTP 429:'));
    assert(seen && seen.message.includes('"rate_limited"'), `onError: ${JSON.stringify(errors)}`);
  });
}

/**
 * agui-server's own 401 through the runtime. The hop verified the viewer's token a moment ago
 * (its /whoami cache holds it, IDENTITY_CACHE_MS); agui-server is then restarted on the same
 * address with another audience, so it now refuses that token while the hop still lets it through.
 * Ends the stack's usefulness: run it last.
 *
 * @param {import('./harness.mjs').Harness} h
 */
export async function runAguiUnauthorizedContract(h, stack) {
  await h.test('contract (agui-server refuses): a token agui-server no longer accepts gets its 401 as HTTP 200 + RUN_ERROR "HTTP 401: …invalid_token…" in onError', async () => {
    const vera = await demoToken(stack, 'vera');
    const runtimeUrl = `${stack.webUrl}/api/copilotkit`;
    const errors = [];
    const { core, agent } = await connectedCore({ runtimeUrl, properties: { authorization: vera }, errors });
    // Fills the hop's identity cache (agui-server answers 403 here: the default agent is admin-only).
    await quietly(() => say(core, agent, 'fill the cache').catch(() => {}));
    assert(errors.length === 1 && errors[0].message.startsWith('HTTP 403:'), `before the restart: ${JSON.stringify(errors)}`);
    await stack.restartAgui({ AGUI_OIDC_AUDIENCE: 'another-service' });
    const whoami = await fetch(`${stack.aguiUrl}/whoami`, { headers: { authorization: `Bearer ${vera}` } });
    assert(whoami.status === 401, `agui-server's /whoami after the restart: HTTP ${whoami.status}`);
    assertRunError(await runViaRuntime(stack, vera, 'after the restart'), 401, 'invalid_token');
    await quietly(() => say(core, agent, 'still there?').catch(() => {}));
    const seen = errors.find((e) => e.message.startsWith('HTTP 401:'));
    assert(seen && seen.message.includes('"invalid_token"'), `onError: ${JSON.stringify(errors)}`);
  });
}
