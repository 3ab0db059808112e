// Key rotation end to end: proves that after the IdP rotates its signing key (POST /__test/rotate:
// a new kid signs, published first), a token signed with the NEW kid is accepted by the SAME
// agui-server process (driven by the official 1.0 client), because agui-server fetched the IdP's
// JWKS again (the IdP's request counter moved), and that a token minted before the rotation is
// still accepted (the old key stays published). run.mjs runs this after both suites and checks
// the server process is the one it started.

import assert from 'node:assert/strict';

import { HttpAgent } from '@ag-ui/client';
import { EventSchemas } from '@ag-ui/core/schemas';

import { decodeJwt, idpHealth, rotateKeys } from '../../idp/client.mjs';
import { makeDriver } from '../driver.mjs';
import { assertStreamedRun, suiteContext, textOf } from '../scenarios.mjs';
import { reporter } from '../wire.mjs';

const TEXT_RUN = ['RUN_STARTED', 'TEXT_MESSAGE_START', 'TEXT_MESSAGE_CONTENT+', 'TEXT_MESSAGE_END', 'RUN_FINISHED'];

const ctx = await suiteContext();
const driver = makeDriver({ name: 'v1', HttpAgent, parseEvent: (e) => EventSchemas.parse(e), dialect: '1.0', url: ctx.url });
const report = reporter('rotation');

async function greet(token) {
  const record = await driver.run(driver.agent({ token }), { text: 'hello there' });
  const events = assertStreamedRun(driver, record, TEXT_RUN);
  assert.equal(textOf(events), `Hello, ${ctx.subject}! You said: "hello there"`);
}

await report.test('a token signed with a rotated-in kid is accepted without restarting agui-server', async () => {
  const oldKid = decodeJwt(ctx.token).header.kid;
  // Positive control first: the server accepts the pre-rotation token, so its JWKS is warm.
  await greet(ctx.token);
  const before = await idpHealth(ctx.idpUrl);
  assert.equal(before.signingKid, oldKid, 'the suite token was signed with the current key');

  const after = await rotateKeys(ctx.idpUrl);
  assert.notEqual(after.signingKid, oldKid, 'rotation made a new signing kid');
  assert.equal(after.kids[0], after.signingKid, 'the new key is published first');
  assert.ok(after.kids.includes(oldKid), 'the old key stays published');

  const fresh = await ctx.mint();
  assert.equal(decodeJwt(fresh).header.kid, after.signingKid, 'the new token is signed with the new kid');
  await greet(fresh);
  const seen = await idpHealth(ctx.idpUrl);
  assert.ok(seen.requests.jwks > before.requests.jwks, `agui-server refetched the JWKS (${before.requests.jwks} -> ${seen.requests.jwks})`);

  // Tokens minted before the rotation still verify against the still-published old key.
  await greet(ctx.token);
});

process.exitCode = report.counts.failed === 0 ? 0 : 1;
