// The demo IdP's login page: proves nothing by itself; a small custom oidc-provider interaction
// (https://github.com/panva/node-oidc-provider/blob/v9.x/docs/README.md#interactions) that signs in
// only the accounts of the settings, each with ITS OWN password. oidc-provider's built-in
// `devInteractions` page accepts any login and any password, which would make a "wrong password is
// refused" test meaningless, so the browser demo (web/) and its tests use this page instead.
//
// Enabled by `"passwordLogin": true` in the settings; accounts then carry a `password`
// (`{"accounts": {"ada": {"name": …, "email": …, "roles": [...], "password": "…"}}}`). The account id
// (the token's `sub`) is the login name. Consent is granted automatically: the demo app is a
// first-party client, and the consent prompt would only add a click (the grant is still recorded,
// with exactly the scopes and resource the app asked for).
//
// Routes, all under oidc-provider's default `interactions.url` (`/interaction/:uid`):
//   GET  /interaction/:uid        → the login form (or, at the consent prompt, the automatic grant)
//   POST /interaction/:uid/login  → checks name + password; 303 back into the authorization flow, or
//                                   the form again with "Wrong name or password" (HTTP 401)
//   GET  /interaction/:uid/abort  → ends the flow with `access_denied`

import { timingSafeEqual, createHash } from 'node:crypto';

const INTERACTION = /^\/interaction\/([A-Za-z0-9_-]+)(\/login|\/abort)?$/;
const MAX_FORM_BYTES = 4096;

/**
 * Builds the request hook `startIdp` calls before oidc-provider sees a request.
 *
 * @param {object} settings the IdP settings (accounts with `password`)
 * @returns {(req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse,
 *   provider: object) => boolean} true when the hook took the request
 */
export function passwordLoginRoutes(settings) {
  return (req, res, provider) => {
    const path = new URL(req.url, 'http://idp').pathname;
    const match = INTERACTION.exec(path);
    if (!match) return false;
    const [, uid, action] = match;
    handle(req, res, provider, settings, uid, action).catch((error) => {
      // An expired or unknown interaction (SessionNotFound) or a bad form: a plain error page,
      // never a stack trace.
      if (!res.headersSent) sendHtml(res, 400, page('Sign-in failed', `<p>${escapeHtml(error.message)}</p>`));
    });
    return true;
  };
}

/**
 * True when `password` is the account's password. Compares digests in constant time so the page
 * does not leak how much of a guess matched.
 *
 * @param {object|undefined} account an entry of `settings.accounts`
 * @param {string} password the submitted password
 * @returns {boolean}
 */
export function passwordMatches(account, password) {
  if (!account || typeof account.password !== 'string' || account.password === '') return false;
  const digest = (value) => createHash('sha256').update(value, 'utf8').digest();
  return timingSafeEqual(digest(account.password), digest(password));
}

async function handle(req, res, provider, settings, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw new Error('this sign-in link does not belong to your browser session');

  if (action === '/abort' && req.method === 'GET') {
    await provider.interactionFinished(
      req,
      res,
      { error: 'access_denied', error_description: 'the user cancelled the sign-in' },
      { mergeWithLastSubmission: false },
    );
    return;
  }

  if (action === '/login' && req.method === 'POST') {
    const form = new URLSearchParams(await readBody(req));
    const login = (form.get('login') ?? '').trim();
    const password = form.get('password') ?? '';
    const account = Object.hasOwn(settings.accounts, login) ? settings.accounts[login] : undefined;
    if (!passwordMatches(account, password)) {
      sendHtml(res, 401, await loginPage(provider, settings, uid, details, login, 'Wrong name or password.'));
      return;
    }
    await provider.interactionFinished(req, res, { login: { accountId: login } }, { mergeWithLastSubmission: false });
    return;
  }

  if (action === undefined && req.method === 'GET') {
    if (details.prompt.name === 'login') {
      sendHtml(res, 200, await loginPage(provider, settings, uid, details, '', ''));
      return;
    }
    if (details.prompt.name === 'consent') {
      await grantConsent(req, res, provider, details);
      return;
    }
    throw new Error(`unsupported prompt ${details.prompt.name}`);
  }

  res.writeHead(405, { allow: action === '/login' ? 'POST' : 'GET' }).end();
}

// Grants exactly what the prompt says is missing (oidc-provider's consent prompt details), so the
// issued tokens carry the scopes and resource the app requested and nothing more.
async function grantConsent(req, res, provider, details) {
  const { prompt, params, session } = details;
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  const missing = prompt.details;
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}

// The app is named by its registered `client_name` (what a person recognises), the client id only
// when it has none. `showDemoAccounts` (the loopback demo's settings only) lists the accounts
// and their passwords under the form.
async function loginPage(provider, settings, uid, details, login, error) {
  const clientId = details.params.client_id ?? '';
  const client = clientId ? await provider.Client.find(String(clientId)) : undefined;
  const app = escapeHtml(client?.clientName || clientId);
  const accounts = settings.showDemoAccounts === true ? demoAccountsList(settings.accounts) : '';
  const body = `
    <p class="lead">Sign in to continue to <b data-testid="app-name">${app}</b>.</p>
    ${error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : ''}
    <form method="post" action="/interaction/${uid}/login" autocomplete="off">
      <label>Name <input name="login" value="${escapeHtml(login)}" required autofocus></label>
      <label>Password <input name="password" type="password" required></label>
      <button type="submit">Sign in</button>
    </form>
    <p><a href="/interaction/${uid}/abort">Cancel</a></p>${accounts}`;
  return page('Sign in', body);
}

function demoAccountsList(accounts) {
  const rows = Object.entries(accounts ?? {})
    .map(([id, a]) => `<tr><td><code>${escapeHtml(id)}</code></td><td><code>${escapeHtml(a.password ?? '')}</code></td><td>${escapeHtml(a.name ?? '')}${a.roles?.length ? ` (${escapeHtml(a.roles.join(', '))})` : ''}</td></tr>`)
    .join('');
  return `
    <section class="demo" data-testid="demo-accounts"><h2>Demo accounts</h2>
      <p class="lead">This loopback demo only.</p>
      <table><tr><th>name</th><th>password</th><th>who</th></tr>${rows}</table></section>`;
}

export function page(title, body) {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} · agui demo IdP</title>
<style>
  body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0;display:grid;place-items:center;min-height:100vh}
  main{background:#fff;padding:2rem 2.5rem;border-radius:10px;box-shadow:0 2px 12px rgba(0,0,0,.12);width:320px}
  h1{font-size:1.3rem;margin-top:0} label{display:block;margin:.8rem 0;font-size:.9rem}
  input{display:block;width:100%;box-sizing:border-box;padding:.5rem;margin-top:.25rem;font-size:1rem}
  button{width:100%;padding:.6rem;font-size:1rem;background:#2f6feb;color:#fff;border:0;border-radius:6px;cursor:pointer}
  .error{color:#b42318;background:#fef3f2;padding:.5rem;border-radius:6px} .lead{color:#555}
  .demo{margin-top:1.5rem;border-top:1px solid #ddd;font-size:.85rem} .demo h2{font-size:1rem} .demo table{border-collapse:collapse;width:100%} .demo td,.demo th{text-align:left;padding:.2rem .3rem}
</style></head>
<body><main><h1>${escapeHtml(title)}</h1>${body}</main></body></html>`;
}

function sendHtml(res, status, html) {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    // The page loads nothing from elsewhere and must not be framed (clickjacking of the form).
    // No `form-action`: Chromium applies it to the redirect chain too, and the flow ends at the
    // app's origin.
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
  });
  res.end(html);
}

async function readBody(req) {
  let text = '';
  for await (const chunk of req) {
    text += chunk;
    if (text.length > MAX_FORM_BYTES) throw new Error('form too large');
  }
  return text;
}

export function escapeHtml(value) {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
