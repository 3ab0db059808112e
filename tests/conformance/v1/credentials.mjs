// Credentials beyond JWTs, end to end with the official 1.0 client: an opaque access token of the
// real test IdP (oidc-provider, RFC 7662 introspection at its own endpoint, found by discovery)
// streams; once revoked it is refused (after agui-server's 1 s cache bound in this config); a
// GitHub token of our app, minted by the GitHub stand-in binary (tests/src/bin/github-standin.rs,
// the same implementation the Rust tests use), streams and greets the GitHub user; another app's
// token is refused. run.mjs starts the agui-server this talks to (introspection in its agui.toml,
// GitHub through AGUI_GITHUB_* pointed at the stand-in) and checks its log holds neither token.

import assert from 'node:assert/strict';

import { HttpAgent } from '@ag-ui/client';
import { EventSchemas } from '@ag-ui/core/schemas';

import { OPAQUE_RESOURCE, requestToken, revokeToken } from '../../idp/client.mjs';
import { makeDriver } from '../driver.mjs';
import { assertStreamedRun, rawChat, runInput, textOf } from '../scenarios.mjs';
import { reporter } from '../wire.mjs';

const TEXT_RUN = ['RUN_STARTED', 'TEXT_MESSAGE_START', 'TEXT_MESSAGE_CONTENT+', 'TEXT_MESSAGE_END', 'RUN_FINISHED'];

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (run the suites through tests/conformance/run.mjs)`);
  return value;
};
const url = env('AGUI_URL');
const idpUrl = env('AGUI_IDP_URL');
const client = { clientId: env('AGUI_CLIENT_ID'), clientSecret: env('AGUI_CLIENT_SECRET') };
const opaqueToken = env('AGUI_OPAQUE_TOKEN');
const githubToken = env('AGUI_GITHUB_TOKEN');
const standinUrl = env('AGUI_GITHUB_STANDIN_URL');

const driver = makeDriver({ name: 'v1', HttpAgent, parseEvent: (e) => EventSchemas.parse(e), dialect: '1.0', url });
const report = reporter('credentials');

async function greet(token, name) {
  const record = await driver.run(driver.agent({ token }), { text: 'hello there' });
  const events = assertStreamedRun(driver, record, TEXT_RUN);
  assert.equal(textOf(events), `Hello, ${name}! You said: "hello there"`);
}

async function refused(token) {
  const record = await driver.run(driver.agent({ token }), { text: 'hello there' });
  assert.match(record.error?.message ?? '', /HTTP 401/, 'the client fails with HTTP 401');
  const raw = await rawChat(url, { token, input: runInput({ text: 'hello there' }) });
  assert.equal(raw.status, 401);
  assert.match(raw.headers.get('www-authenticate') ?? '', /^Bearer .*error="invalid_token"/);
}

const opaque = () => requestToken({ issuer: idpUrl, ...client, resource: OPAQUE_RESOURCE, scope: 'agui:chat' });

await report.test('introspection: an opaque token of the IdP streams (subject = its client)', async () => {
  assert.equal(opaqueToken.split('.').length, 1, 'the token is opaque, not a JWT');
  await greet(opaqueToken, client.clientId);
});

await report.test('introspection: a revoked opaque token is refused with 401', async () => {
  // Revoked before agui-server ever saw it: refused at once.
  const early = await opaque();
  await revokeToken({ issuer: idpUrl, token: early, ...client });
  await refused(early);
  // Seen (and cached) first, then revoked: refused once the cache bound (1 s here) has passed.
  const late = await opaque();
  await greet(late, client.clientId);
  await revokeToken({ issuer: idpUrl, token: late, ...client });
  await new Promise((resolve) => setTimeout(resolve, 1_200));
  await refused(late);
});

await report.test('GitHub: a token of our app (from the stand-in) streams and greets the GitHub user', async () => {
  assert.match(githubToken, /^gho_/);
  await greet(githubToken, 'The Octocat');
});

await report.test("GitHub: another app's token is refused with 401", async () => {
  const response = await fetch(`${standinUrl}/__standin/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ login: 'octocat', client_id: 'Iv1.other-app' }),
  });
  const { token } = await response.json();
  await refused(token);
});

process.exitCode = report.counts.failed === 0 ? 0 : 1;
