// Unit tests of the hop's guard pieces (guard.mjs), no network: the properties → header bridge,
// the identity cache (hashed keys, bounded by IDENTITY_CACHE_MS and by the token's exp, failures
// never cached) and thread ownership. Exported for web/e2e/run.mjs; each test can fail.

import { bridgePropertiesToHeader, IDENTITY_CACHE_MS, IdentityVerifier, ownerKey, ThreadOwners, threadGuard } from './guard.mjs';

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

function post(body, headers = {}) {
  return new Request('http://hop/api/copilotkit/agent/default/run', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

function jwtWithExp(exp) {
  const part = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'RS256' })}.${part({ sub: 'x', exp })}.sig`;
}

function fakeWhoami(answers) {
  const calls = [];
  const fetch = async (url, init) => {
    calls.push(init.headers.authorization);
    const [status, body] = answers(init.headers.authorization);
    return new Response(JSON.stringify(body), { status, headers: status === 401 ? { 'www-authenticate': 'Bearer error="invalid_token"' } : {} });
  };
  return { fetch, calls };
}

/** @param {import('../e2e/harness.mjs').Harness} h */
export async function runGuardUnitTests(h) {
  await h.test('unit: the bridge copies forwardedProps.authorization into Authorization: Bearer', async () => {
    const bridged = await bridgePropertiesToHeader(post({ threadId: 't', forwardedProps: { authorization: 'abc.def.ghi' } }));
    assert(bridged?.headers.get('authorization') === 'Bearer abc.def.ghi', 'no header');
    const body = await bridged.json();
    assert(body.threadId === 't', 'the body was consumed or changed');
    const prefixed = await bridgePropertiesToHeader(post({ forwardedProps: { authorization: 'Bearer abc.def.ghi' } }));
    assert(prefixed?.headers.get('authorization') === 'Bearer abc.def.ghi', 'a "Bearer " value was not normalised');
  });

  await h.test('unit: the bridge never overrides an existing Authorization header, nor invents one', async () => {
    const kept = await bridgePropertiesToHeader(post({ forwardedProps: { authorization: 'body' } }, { authorization: 'Bearer header' }));
    assert(kept === undefined, 'replaced a request that had a header');
    assert((await bridgePropertiesToHeader(post({ forwardedProps: {} }))) === undefined, 'header without a token');
    assert((await bridgePropertiesToHeader(post({ forwardedProps: { authorization: 'a b c' } }))) === undefined, 'accepted a token with spaces');
  });

  await h.test('unit: verified identities are cached (by token hash) for at most the cache time and never past exp', async () => {
    let now = 1_000_000;
    const { fetch, calls } = fakeWhoami(() => [200, { issuer: 'i', subject: 's' }]);
    const verifier = new IdentityVerifier({ whoamiUrl: 'http://agui/whoami', fetch, now: () => now });
    const long = jwtWithExp(now / 1000 + 3600);
    assert((await verifier.verify(long)).ok && (await verifier.verify(long)).ok, 'not ok');
    assert(calls.length === 1, `cache missed: ${calls.length} lookups`);
    assert(![...verifier.cache.keys()].some((k) => k.includes(long)), 'the token is a cache key');
    now += IDENTITY_CACHE_MS + 1;
    await verifier.verify(long);
    assert(calls.length === 2, 'the cache outlived IDENTITY_CACHE_MS');
    const soon = jwtWithExp(now / 1000 + 5);
    await verifier.verify(soon);
    now += 5_001;
    await verifier.verify(soon);
    assert(calls.length === 4, 'the cache outlived the token exp');
  });

  await h.test("unit: a refused token is not cached and agui-server's 401 and challenge are passed on", async () => {
    const { fetch, calls } = fakeWhoami(() => [401, { error: 'invalid_token' }]);
    const verifier = new IdentityVerifier({ whoamiUrl: 'http://agui/whoami', fetch });
    const first = await verifier.verify('bad');
    await verifier.verify('bad');
    assert(!first.ok && first.status === 401 && first.wwwAuthenticate.includes('invalid_token'), JSON.stringify(first));
    assert(calls.length === 2, 'a failure was cached');
  });

  await h.test('unit: a 200 from /whoami that is not an identity (not JSON, null, a list, no string subject) is a 502 verdict, never an exception or an identity; a real one passes (control)', async () => {
    for (const body of ['<html>ok</html>', 'null', '[]', '{"issuer":"i","subject":7}', '"vera"']) {
      const verifier = new IdentityVerifier({ whoamiUrl: 'http://agui/whoami', fetch: async () => new Response(body, { status: 200 }) });
      const verdict = await verifier.verify('t');
      assert(!verdict.ok && verdict.status === 502 && verifier.cache.size === 0, `${body}: ${JSON.stringify(verdict)}`);
    }
    const verifier = new IdentityVerifier({ whoamiUrl: 'http://agui/whoami', fetch: async () => new Response('{"issuer":"i","subject":"s","name":null}', { status: 200 }) });
    const verdict = await verifier.verify('t');
    assert(verdict.ok && verdict.identity.subject === 's', JSON.stringify(verdict));
  });

  await h.test('unit: a thread belongs to its first runner; connect and stop never claim one', async () => {
    const owners = new ThreadOwners();
    const a = ownerKey({ issuer: 'i', subject: 'a' });
    const b = ownerKey({ issuer: 'i', subject: 'b' });
    const otherIssuer = ownerKey({ issuer: 'j', subject: 'a' });
    assert(owners.authorize('agent/connect', 't', b), 'connect to an empty thread refused');
    assert(owners.authorize('agent/run', 't', a), 'first run refused');
    assert(owners.authorize('agent/connect', 't', a) && owners.authorize('agent/run', 't', a), 'owner refused');
    assert(!owners.authorize('agent/connect', 't', b), 'b connected');
    assert(!owners.authorize('agent/run', 't', b), 'b ran');
    assert(!owners.authorize('agent/stop', 't', b), 'b stopped');
    assert(!owners.authorize('agent/run', 't', otherIssuer), 'same subject from another issuer accepted');
  });

  await h.test('unit: the guard answers 401 without a token, 404 for routes it does not offer, passes info', async () => {
    const { fetch } = fakeWhoami(() => [200, { issuer: 'i', subject: 's' }]);
    const guard = threadGuard({ verifier: new IdentityVerifier({ whoamiUrl: 'http://agui/whoami', fetch }), owners: new ThreadOwners() });
    const refusal = async (ctx) => guard(ctx).then(() => null, (thrown) => thrown);
    const anonymous = await refusal({ request: post({ threadId: 't' }), route: { method: 'agent/run', agentId: 'default' } });
    assert(anonymous instanceof Response && anonymous.status === 401, `no token: ${anonymous?.status}`);
    const listing = await refusal({ request: new Request('http://hop/api/copilotkit/threads'), route: { method: 'threads/list' } });
    assert(listing instanceof Response && listing.status === 404, `threads/list: ${listing?.status}`);
    assert((await refusal({ request: new Request('http://hop/api/copilotkit/info'), route: { method: 'info' } })) === null, 'info refused');
    const allowed = await refusal({ request: post({ threadId: 't' }, { authorization: 'Bearer x.y.z' }), route: { method: 'agent/run', agentId: 'default' } });
    assert(allowed === null, `a verified first run was refused: ${allowed?.status}`);
  });

  await h.test("unit: the guard answers another user's thread with agui-server's 404 thread_not_found (existence not revealed)", async () => {
    const { fetch } = fakeWhoami((authorization) => [200, { issuer: 'i', subject: authorization === 'Bearer a.a.a' ? 'a' : 'b' }]);
    const guard = threadGuard({ verifier: new IdentityVerifier({ whoamiUrl: 'http://agui/whoami', fetch }), owners: new ThreadOwners() });
    const refusal = async (ctx) => guard(ctx).then(() => null, (thrown) => thrown);
    const run = (token, threadId) => ({ request: post({ threadId }, { authorization: `Bearer ${token}` }), route: { method: 'agent/run', agentId: 'default' } });
    assert((await refusal(run('a.a.a', 'owned'))) === null, "a's first run was refused (control)");
    assert((await refusal(run('a.a.a', 'owned'))) === null, "a's second run was refused (control)");
    const other = await refusal(run('b.b.b', 'owned'));
    assert(other instanceof Response && other.status === 404, `b on a's thread: ${other?.status}`);
    const body = await other.json();
    assert(body.error === 'thread_not_found' && !/another user|belongs/i.test(body.message), `b's refusal: ${JSON.stringify(body)}`);
  });

  await h.test("unit: a stop needs the owner's token: none is 401, another user's is 404, the owner's passes", async () => {
    const { fetch } = fakeWhoami((authorization) => [200, { issuer: 'i', subject: authorization === 'Bearer a.a.a' ? 'a' : 'b' }]);
    const guard = threadGuard({ verifier: new IdentityVerifier({ whoamiUrl: 'http://agui/whoami', fetch }), owners: new ThreadOwners() });
    const refusal = async (ctx) => guard(ctx).then(() => null, (thrown) => thrown);
    // What CopilotKit's stop sends: the thread in the path, `{runId}` in the body, no properties.
    const stop = (headers) => ({
      request: new Request('http://hop/api/copilotkit/agent/default/stop/owned', {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ runId: 'r1' }),
      }),
      route: { method: 'agent/stop', agentId: 'default', threadId: 'owned' },
    });
    const claim = await refusal({ request: post({ threadId: 'owned' }, { authorization: 'Bearer a.a.a' }), route: { method: 'agent/run', agentId: 'default' } });
    assert(claim === null, `a's first run was refused: ${claim?.status}`);
    const anonymous = await refusal(stop({}));
    assert(anonymous instanceof Response && anonymous.status === 401, `stop without a token: ${anonymous?.status}`);
    const other = await refusal(stop({ authorization: 'Bearer b.b.b' }));
    assert(other instanceof Response && other.status === 404 && (await other.json()).error === 'thread_not_found', `b's stop: ${other?.status}`);
    const owner = await refusal(stop({ authorization: 'Bearer a.a.a' }));
    assert(owner === null, `the owner's stop was refused: ${owner?.status}`);
  });
}
