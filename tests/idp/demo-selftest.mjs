#!/usr/bin/env node
// Self-test of the demo extension (demo.mjs + login.mjs), without a browser or agui-server: proves
// that the public PKCE client gets an RFC 9068 JWT access token for agui-server's audience although
// it sends no `resource` (the default resource), that the token carries the account's `name`,
// `email` and `roles`, that the login page accepts each account ONLY with its own password, and that
// PKCE is enforced for the public client. Prints `ok - ` / `not ok - ` lines and
// `idp-demo: N passed, N failed`; exits 1 on failure. web/e2e/run.mjs runs it first.

import { decodeJwt } from './client.mjs';
import { loadSettings } from './config.mjs';
import { DEMO_ACCOUNTS, demoSettings, signInWithPassword } from './demo.mjs';
import { startIdp } from './idp.mjs';

const APP = 'http://127.0.0.1:5999';
const counts = { passed: 0, failed: 0 };

async function check(name, fn) {
  try {
    await fn();
    counts.passed += 1;
    console.log(`ok - ${name}`);
  } catch (error) {
    counts.failed += 1;
    console.log(`not ok - ${name}: ${String(error?.message ?? error).replace(/\s+/g, ' ')}`);
  }
}

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

// Quiet oidc-provider's development notices (they go to stdout otherwise).
console.info = () => {};

const idp = await startIdp({ port: 0, settings: { ...loadSettings(undefined), ...demoSettings({ appOrigin: APP }) } });
const signIn = (login, password, extra = {}) => signInWithPassword({ issuer: idp.issuer, appOrigin: APP, login, password, ...extra });
try {
  for (const [login, account] of Object.entries(DEMO_ACCOUNTS)) {
    await check(`${login} signs in with the code flow and gets an at+jwt for agui-server with identity claims`, async () => {
      const result = await signIn(login, account.password);
      assert(!result.refused && result.tokens, `own password refused (${result.error ?? result.status})`);
      const { header, payload } = decodeJwt(result.tokens.access_token);
      assert(header.typ === 'at+jwt', `typ ${header.typ}`);
      assert(payload.aud === 'agui-server', `aud ${JSON.stringify(payload.aud)}`);
      assert(payload.sub === login, `sub ${payload.sub}`);
      assert(payload.name === account.name && payload.email === account.email, 'name/email missing');
      assert(JSON.stringify(payload.roles) === JSON.stringify(account.roles), `roles ${JSON.stringify(payload.roles)}`);
      assert(payload.scope.split(' ').includes('agui:chat'), `scope ${payload.scope}`);
      assert(typeof result.tokens.id_token === 'string', 'no id_token');
      // The resource server's lifetime applies (the expiry test shortens it through demoSettings).
      assert(payload.exp - payload.iat === 600, `lifetime ${payload.exp - payload.iat}`);
    });
  }
  await check('a wrong password is refused with the form again (positive control above)', async () => {
    const result = await signIn('vera', 'not-her-password');
    assert(result.refused, 'wrong password accepted');
    assert(result.html.includes('Wrong name or password'), 'no error message');
  });
  await check("one account's password does not open another account", async () => {
    const result = await signIn('vera', DEMO_ACCOUNTS.ada.password);
    assert(result.refused, "vera signed in with ada's password");
  });
  await check('an unknown account is refused', async () => {
    const result = await signIn('mallory', DEMO_ACCOUNTS.ada.password);
    assert(result.refused, 'unknown account accepted');
  });
  await check('the public client must use PKCE', async () => {
    const result = await signIn('ada', DEMO_ACCOUNTS.ada.password, { pkce: false });
    assert(result.error === 'invalid_request', `expected invalid_request, got ${JSON.stringify(result).slice(0, 80)}`);
  });
} finally {
  await idp.close();
}

console.log(`idp-demo: ${counts.passed} passed, ${counts.failed} failed`);
process.exit(counts.failed === 0 ? 0 : 1);
