#!/usr/bin/env node
// Self-test of the demo extension (demo.mjs + login.mjs), without a browser or agui-server: proves
// that the public PKCE client gets an RFC 9068 JWT access token for agui-server's audience although
// it sends no `resource` (the default resource), that the token carries the account's `name`,
// `email` and `roles`, that the login page accepts each account ONLY with its own password, and that
// PKCE is enforced for the public client. Prints `ok - ` / `not ok - ` lines and
// `idp-demo: N passed, N failed`; exits 1 on failure. web/e2e/run.mjs runs it first.

import { decodeJwt } from './client.mjs';
import { loadSettings } from './config.mjs';
import { CookieAgent, DEMO_ACCOUNTS, DEMO_APP_NAME, DEMO_CLIENT_ID, demoSettings, signInWithPassword } from './demo.mjs';
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
// The same demo settings without the demo-only extras: the control for what they add.
const { showDemoAccounts: _shown, logoutWithoutConfirmation: _skip, ...plainDemo } = demoSettings({ appOrigin: APP });
const plain = await startIdp({ port: 0, settings: { ...loadSettings(undefined), ...plainDemo } });

// The login page a fresh browser gets for the demo client at `issuer`.
async function loginPageHtml(issuer) {
  const agent = new CookieAgent();
  const params = new URLSearchParams({
    client_id: DEMO_CLIENT_ID,
    response_type: 'code',
    redirect_uri: `${APP}/`,
    scope: 'openid',
    state: 's',
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    code_challenge_method: 'S256',
  });
  let response = await agent.request(`${issuer}/auth?${params}`);
  for (let hops = 0; hops < 5 && response.status >= 300 && response.status < 400; hops += 1) {
    response = await agent.request(new URL(response.headers.get('location') ?? '', issuer));
  }
  return response.text();
}

// Signs `login` in and asks the provider to end the session the way the app does (or without the
// hint); returns the page oidc-provider answers.
async function logoutPage(issuer, { hint }) {
  const agent = new CookieAgent();
  const result = await signInWithPassword({ issuer, appOrigin: APP, login: 'vera', password: DEMO_ACCOUNTS.vera.password, agent });
  assert(!result.refused && result.tokens, 'sign-in failed');
  const params = new URLSearchParams({ post_logout_redirect_uri: `${APP}/` });
  if (hint) params.set('id_token_hint', result.tokens.id_token);
  const response = await agent.request(`${issuer}/session/end?${params}`);
  return { agent, status: response.status, html: await response.text() };
}
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
  await check('the login page names the app (client_name, not the client id) and lists the demo accounts', async () => {
    const html = await loginPageHtml(idp.issuer);
    assert(html.includes(`<b data-testid="app-name">${DEMO_APP_NAME}</b>`), 'the app name is missing');
    assert(!html.includes(`<b data-testid="app-name">${DEMO_CLIENT_ID}</b>`), 'the page names the client id');
    for (const [login, account] of Object.entries(DEMO_ACCOUNTS)) {
      assert(html.includes(`<code>${login}</code>`) && html.includes(`<code>${account.password}</code>`), `account ${login} not listed`);
    }
  });
  await check('without showDemoAccounts the login page lists no accounts (the demo-only control)', async () => {
    const html = await loginPageHtml(plain.issuer);
    assert(html.includes(DEMO_APP_NAME), 'the app name is missing');
    assert(!html.includes('data-testid="demo-accounts"') && !html.includes(DEMO_ACCOUNTS.vera.password), 'accounts listed');
  });
  await check("the app's sign-out (id_token_hint + post_logout_redirect_uri) skips the confirmation and ends the session", async () => {
    const { agent, status, html } = await logoutPage(idp.issuer, { hint: true });
    assert(status === 200 && html.includes('name="logout" value="yes"') && !html.includes('Do you want to sign out'), 'confirmation shown');
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(html)?.[1];
    const action = /<form id="op.logoutForm" method="post" action="([^"]+)"/.exec(html)?.[1];
    assert(xsrf && action, 'no logout form');
    const confirm = await agent.request(new URL(action, idp.issuer), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ xsrf, logout: 'yes' }),
    });
    assert(confirm.status === 303 && confirm.headers.get('location') === `${APP}/`, `confirm: ${confirm.status} ${confirm.headers.get('location')}`);
  });
  await check('a sign-out without the id token hint still asks (and so does a provider without the setting)', async () => {
    const bare = await logoutPage(idp.issuer, { hint: false });
    assert(bare.html.includes('Do you want to sign out'), 'no confirmation without the hint');
    const other = await logoutPage(plain.issuer, { hint: true });
    assert(other.html.includes('Do you want to sign out'), 'no confirmation without logoutWithoutConfirmation');
  });
} finally {
  await idp.close();
  await plain.close();
}

console.log(`idp-demo: ${counts.passed} passed, ${counts.failed} failed`);
process.exit(counts.failed === 0 ? 0 : 1);
