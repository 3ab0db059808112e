// Self-test of the test IdP: proves that it is what the conformance suite relies on, without
// agui-server: discovery names the loopback issuer; client_credentials yields RFC 9068 JWT access
// tokens (`typ: at+jwt`) with the configured `aud`, `sub` = client id, identity claims for the
// named client, signed by a key its JWKS publishes (public members only) and verifiable with
// node:crypto; bad credentials and unknown resources are refused; a rotation makes a new kid
// sign and publishes it first (old key kept, or retired on request); ES256 and the audience are
// configurable; the CLI prints exactly one ready line and exits when its parent's pipe closes;
// opaque tokens for the opaque resource introspect (RFC 7662) for the introspector only, until
// revoked (RFC 7009).
// Run: node tests/idp/selftest.mjs (run.mjs runs it first). Prints ok / not ok lines.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createPublicKey, verify } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { decodeJwt, idpHealth, introspect, OPAQUE_RESOURCE, requestToken, revokeToken, rotateKeys, TEST_CLIENTS } from './client.mjs';
import { loadSettings } from './config.mjs';
import { startIdp } from './idp.mjs';

// oidc-provider prints notices on stdout (console.info); our stdout carries only result lines.
// Its start-up warnings (Node 20 "unsupported runtime", the in-memory adapter, once per Provider)
// are expected for a test IdP, so they are dropped here rather than repeated for every instance.
const { warn } = console;
const isProviderNotice = (args) => typeof args[0] === 'string' && args[0].startsWith('oidc-provider ');
console.info = (...args) => isProviderNotice(args) || console.error(...args);
console.warn = (...args) => isProviderNotice(args) || warn(...args);

const here = dirname(fileURLToPath(import.meta.url));
const counts = { passed: 0, failed: 0 };

async function test(name, fn) {
  try {
    await fn();
    counts.passed += 1;
    process.stdout.write(`ok - idp: ${name}\n`);
  } catch (error) {
    counts.failed += 1;
    process.stdout.write(`not ok - idp: ${name}: ${String(error?.message ?? error).split('\n')[0]}\n`);
  }
}

async function jwks(issuer) {
  const response = await fetch(`${issuer}/jwks`);
  assert.equal(response.status, 200);
  return (await response.json()).keys;
}

/** Verifies a compact JWS against the published key its header names (RS256 / ES256 only). */
async function verifyAgainstJwks(issuer, token) {
  const { header } = decodeJwt(token);
  const jwk = (await jwks(issuer)).find((k) => k.kid === header.kid);
  assert.ok(jwk, `kid ${header.kid} is published`);
  const [h, p, s] = token.split('.');
  const key = createPublicKey({ key: jwk, format: 'jwk' });
  const signature = Buffer.from(s, 'base64url');
  const options = header.alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key;
  return verify('sha256', Buffer.from(`${h}.${p}`), options, signature);
}

const idp = await startIdp({ settings: loadSettings(undefined) });
const { issuer } = idp;
const plain = TEST_CLIENTS.plain;

try {
  await test('discovery names the loopback issuer, its JWKS and token endpoints', async () => {
    assert.match(issuer, /^http:\/\/127\.0\.0\.1:\d+$/);
    const discovery = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
    assert.equal(discovery.issuer, issuer);
    assert.equal(discovery.jwks_uri, `${issuer}/jwks`);
    assert.equal(discovery.token_endpoint, `${issuer}/token`);
    assert.ok(discovery.grant_types_supported.includes('client_credentials'));
  });

  await test('client_credentials gives an at+jwt for agui-server with sub = client id', async () => {
    const token = await requestToken({ issuer, ...plain, scope: 'agui:chat' });
    const { header, payload } = decodeJwt(token);
    assert.equal(header.typ, 'at+jwt');
    assert.equal(header.alg, 'RS256');
    assert.equal(header.kid, idp.health().signingKid);
    assert.equal(payload.iss, issuer);
    assert.equal(payload.aud, 'agui-server');
    assert.equal(payload.sub, 'agui-tests');
    assert.equal(payload.client_id, 'agui-tests');
    assert.equal(payload.scope, 'agui:chat');
    assert.equal(payload.exp - payload.iat, 600);
    assert.equal(typeof payload.jti, 'string');
    for (const claim of ['name', 'email', 'roles']) assert.equal(payload[claim], undefined, claim);
    assert.equal(await verifyAgainstJwks(issuer, token), true, 'signature verifies with the published key');
    // Negative control for the verifier itself: a changed payload does not verify.
    const [h, , sig] = token.split('.');
    const forged = Buffer.from(JSON.stringify({ ...payload, sub: 'someone-else' })).toString('base64url');
    assert.equal(await verifyAgainstJwks(issuer, `${h}.${forged}.${sig}`), false, 'a forged payload fails');
  });

  await test('the JWKS publishes public members only, RS256 and ES256, each with a kid', async () => {
    const keys = await jwks(issuer);
    assert.deepEqual(keys.map((k) => k.kty).sort(), ['EC', 'RSA']);
    for (const key of keys) {
      assert.equal(typeof key.kid, 'string');
      for (const secret of ['d', 'p', 'q', 'dp', 'dq', 'qi']) assert.equal(key[secret], undefined, `${key.kid}.${secret}`);
    }
  });

  await test('the named client gets name, email and roles claims', async () => {
    const token = await requestToken({ issuer, ...TEST_CLIENTS.named });
    const { payload } = decodeJwt(token);
    assert.equal(payload.sub, 'agui-tests-named');
    assert.equal(payload.name, TEST_CLIENTS.named.claims.name);
    assert.equal(payload.email, TEST_CLIENTS.named.claims.email);
    assert.deepEqual(payload.roles, TEST_CLIENTS.named.claims.roles);
  });

  await test('resource http://other-api gives a token with aud other-api', async () => {
    const token = await requestToken({ issuer, ...plain, resource: 'http://other-api', scope: 'other:read' });
    assert.equal(decodeJwt(token).payload.aud, 'other-api');
  });

  await test('resource http://agui-server-opaque gives an opaque token that introspects, until revoked', async () => {
    const token = await requestToken({ issuer, ...plain, resource: OPAQUE_RESOURCE, scope: 'agui:chat' });
    assert.equal(token.split('.').length, 1, 'not a JWT');
    const active = await introspect({ issuer, token });
    assert.equal(active.active, true);
    assert.equal(active.iss, issuer);
    assert.equal(active.aud, 'agui-server');
    assert.equal(active.client_id, 'agui-tests');
    assert.equal(active.scope, 'agui:chat');
    assert.equal(active.token_type, 'Bearer');
    assert.equal(active.sub, undefined, 'client_credentials: no sub, only client_id');
    assert.equal(JSON.stringify(active).includes(token), false, 'the answer does not echo the token');
    // Only the introspector may ask (the holder of a token learns nothing more).
    assert.deepEqual(await introspect({ issuer, token, ...plain }), { active: false });
    await revokeToken({ issuer, token, ...plain });
    assert.deepEqual(await introspect({ issuer, token }), { active: false });
  });

  await test('a wrong secret and an unknown resource are refused', async () => {
    await assert.rejects(requestToken({ issuer, clientId: plain.clientId, clientSecret: 'wrong' }), /HTTP 401 invalid_client/);
    await assert.rejects(requestToken({ issuer, ...plain, resource: 'http://unknown' }), /HTTP 400 invalid_target/);
  });

  await test('rotation: a new kid signs, is published first, the old one stays', async () => {
    const before = await idpHealth(issuer);
    const oldToken = await requestToken({ issuer, ...plain });
    const after = await rotateKeys(issuer);
    assert.equal(after.generation, before.generation + 1);
    assert.notEqual(after.signingKid, before.signingKid);
    const published = (await jwks(issuer)).map((k) => k.kid);
    assert.equal(published[0], after.signingKid, 'new key first');
    assert.ok(published.includes(before.signingKid), 'old key still published');
    const fresh = await requestToken({ issuer, ...plain });
    assert.equal(decodeJwt(fresh).header.kid, after.signingKid);
    assert.equal(await verifyAgainstJwks(issuer, fresh), true);
    assert.equal(await verifyAgainstJwks(issuer, oldToken), true, 'pre-rotation token still verifies');
    const counted = await idpHealth(issuer);
    assert.ok(counted.requests.jwks >= before.requests.jwks + 3, 'JWKS fetches are counted');
  });

  await test('rotation with retire: only the new keys are published', async () => {
    const before = await idpHealth(issuer);
    const after = await rotateKeys(issuer, { retire: true });
    const published = (await jwks(issuer)).map((k) => k.kid);
    assert.equal(published.length, 2);
    assert.equal(published[0], after.signingKid);
    assert.ok(!published.includes(before.signingKid));
  });
} finally {
  await idp.close();
}

await test('ES256 signing and the audience are configurable', async () => {
  const custom = await startIdp({ settings: { ...loadSettings(undefined, { audience: 'custom-aud' }), signingAlg: 'ES256' } });
  try {
    const token = await requestToken({ issuer: custom.issuer, ...plain });
    const { header, payload } = decodeJwt(token);
    assert.equal(header.alg, 'ES256');
    assert.equal(payload.aud, 'custom-aud');
    assert.equal(await verifyAgainstJwks(custom.issuer, token), true);
  } finally {
    await custom.close();
  }
});

await test('the CLI prints one JSON ready line and exits when stdin closes', async () => {
  const child = spawn(process.execPath, [join(here, 'server.mjs'), '--port', '0', '--exit-on-stdin-close'], {
    stdio: ['pipe', 'pipe', 'ignore'],
  });
  let stdout = '';
  const ready = new Promise((resolve, reject) => {
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      if (stdout.includes('\n')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`exited early with ${code}`)));
  });
  await ready;
  const line = JSON.parse(stdout.trim());
  assert.deepEqual(Object.keys(line).sort(), ['issuer', 'port']);
  assert.equal(line.issuer, `http://127.0.0.1:${line.port}`);
  assert.equal((await idpHealth(line.issuer)).status, 'ok');
  const exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  child.stdin.end();
  assert.equal(await exited, 0);
  assert.equal(stdout, `${JSON.stringify(line)}\n`, 'nothing else on stdout');
});

process.exitCode = counts.failed === 0 ? 0 : 1;
