// Settings of the browser demo (web/): proves nothing by itself; the IdP configuration `make run` and
// web/e2e use, written to a JSON file and passed as `node tests/idp/server.mjs --config FILE`.
//
// What it adds to the defaults (config.mjs):
// - `agui-web`, a PUBLIC client (no secret; oidc-provider requires PKCE for it by default) doing the
//   authorization code flow, redirecting to the app's origin (sign-in and silent renew) and back after
//   sign-out;
// - two end users with their own passwords, checked by the custom login page (login.mjs):
//   `ada` (role admin) and `vera` (role viewer). Their `name`, `email` and `roles` go into the access
//   token (config.mjs extraTokenClaims), because agui-server builds its Principal from the access token;
// - the login page names the app (`client_name`, not the client id) and lists the demo accounts
//   (`showDemoAccounts`: this loopback demo only; the passwords are in the README anyway);
// - sign-out in one click: the provider's "Do you want to sign out?" page is skipped for this
//   client when the app sends its id token as `id_token_hint` and a registered
//   `post_logout_redirect_uri` (`logoutWithoutConfirmation`, config.mjs);
// - the default resource `http://agui-server` (already the default): oidc-client-ts sends no
//   RFC 8707 `resource`, so without a default resource oidc-provider would issue an opaque token for
//   userinfo only; with it, the code grant yields an RFC 9068 JWT whose `aud` is agui-server's.

/** The demo's public client id. */
export const DEMO_CLIENT_ID = 'agui-web';

/** The name the login page shows for the demo app (the client's `client_name`). */
export const DEMO_APP_NAME = 'agui-server CopilotKit sample';

/** Scopes the demo app requests: OIDC identity, plus agui-server's chat and tool scopes. */
export const DEMO_SCOPE = 'openid profile email agui:chat agui:tools';

/** The demo accounts. The passwords are for this loopback demo only. */
export const DEMO_ACCOUNTS = Object.freeze({
  ada: Object.freeze({
    password: 'ada-admin-pw',
    name: 'Ada Lovelace',
    email: 'ada@example.test',
    roles: Object.freeze(['admin']),
  }),
  vera: Object.freeze({
    password: 'vera-viewer-pw',
    name: 'Vera Viewer',
    email: 'vera@example.test',
    roles: Object.freeze(['viewer']),
  }),
});

/**
 * The IdP settings for the demo app served at `appOrigin`.
 *
 * @param {{appOrigin: string, accessTokenTTL?: number, audience?: string}} options `appOrigin` like
 *   `http://127.0.0.1:5173` (no trailing slash); `accessTokenTTL` in seconds (default 600; the
 *   expiry test uses a few seconds)
 * @returns {object} a settings object for `loadSettings` (write it as JSON for `--config`)
 */
export function demoSettings({ appOrigin, accessTokenTTL = 600, audience = 'agui-server' }) {
  const origin = new URL(appOrigin).origin;
  return {
    audience,
    passwordLogin: true,
    devInteractions: false,
    showDemoAccounts: true,
    logoutWithoutConfirmation: [DEMO_CLIENT_ID],
    resourceServers: {
      'http://agui-server': { scope: 'agui:chat agui:tools agui:admin', accessTokenTTL },
    },
    clients: [
      {
        client_id: DEMO_CLIENT_ID,
        client_name: DEMO_APP_NAME,
        application_type: 'web',
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code'],
        response_types: ['code'],
        redirect_uris: [`${origin}/`, `${origin}/silent-renew.html`],
        post_logout_redirect_uris: [`${origin}/`],
      },
    ],
    accounts: Object.fromEntries(
      Object.entries(DEMO_ACCOUNTS).map(([id, account]) => [id, { ...account, roles: [...account.roles] }]),
    ),
  };
}

// A minimal cookie-keeping, non-redirect-following user agent: enough for the authorization code
// flow through login.mjs without a browser (headless tests of web/ and demo-selftest.mjs).
export class CookieAgent {
  constructor() {
    this.cookies = new Map();
  }

  /**
   * @param {string|URL} url
   * @param {RequestInit} [init]
   * @returns {Promise<Response>}
   */
  async request(url, init = {}) {
    const headers = new Headers(init.headers);
    if (this.cookies.size > 0) headers.set('cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    const response = await fetch(url, { ...init, headers, redirect: 'manual' });
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const index = pair.indexOf('=');
      this.cookies.set(pair.slice(0, index), pair.slice(index + 1));
    }
    return response;
  }
}

/**
 * Signs a demo user in as the app would (authorization code + PKCE S256, through the password
 * login page) and redeems the code. For headless tests; the browser tests use the real page.
 *
 * @param {{issuer: string, appOrigin: string, login: string, password: string,
 *   pkce?: boolean, scope?: string, agent?: CookieAgent}} options `agent`: the user agent whose
 *   cookies (the provider's session) the caller keeps, e.g. to sign out afterwards
 * @returns {Promise<{refused: true, status: number, html: string} |
 *   {refused: false, tokens: {access_token: string, id_token: string, expires_in: number}} |
 *   {refused: false, error: string}>} `error` when the provider redirected back with an error
 */
export async function signInWithPassword({ issuer, appOrigin, login, password, pkce = true, scope = DEMO_SCOPE, agent = new CookieAgent() }) {
  const { createHash, randomBytes } = await import('node:crypto');
  const origin = new URL(appOrigin).origin;
  const redirectUri = `${origin}/`;
  const verifier = randomBytes(32).toString('base64url');
  const params = new URLSearchParams({
    client_id: DEMO_CLIENT_ID,
    response_type: 'code',
    redirect_uri: redirectUri,
    scope,
    state: randomBytes(8).toString('hex'),
  });
  if (pkce) {
    params.set('code_challenge', createHash('sha256').update(verifier).digest('base64url'));
    params.set('code_challenge_method', 'S256');
  }
  let response = await agent.request(`${issuer}/auth?${params}`);
  let landed;
  for (let hops = 0; hops < 10 && response.status >= 300 && response.status < 400; hops += 1) {
    const header = response.headers.get('location');
    if (!header) throw new Error(`HTTP ${response.status} without a Location`);
    const location = new URL(header, issuer);
    if (location.origin === origin) {
      landed = location;
      break;
    }
    if (/^\/interaction\/[^/]+$/.test(location.pathname) && !landed) {
      const form = await agent.request(location);
      const html = await form.text();
      if (!html.includes('name="password"')) {
        // The consent step (login.mjs grants it automatically) answers a redirect instead.
        response = form;
        continue;
      }
      response = await agent.request(`${location}/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ login, password }),
      });
      if (response.status === 401) return { refused: true, status: 401, html: await response.text() };
      continue;
    }
    response = await agent.request(location);
  }
  if (!landed) throw new Error(`the sign-in did not return to the app (HTTP ${response.status})`);
  const error = landed.searchParams.get('error');
  if (error) return { refused: false, error };
  const code = landed.searchParams.get('code');
  if (!code) throw new Error('the provider returned neither a code nor an error');
  const token = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      client_id: DEMO_CLIENT_ID,
      code,
      redirect_uri: redirectUri,
      code_verifier: verifier,
    }),
  });
  const tokens = /** @type {{access_token: string, id_token: string, expires_in: number, error?: string}} */ (await token.json());
  if (token.status !== 200) throw new Error(`token endpoint: HTTP ${token.status} ${tokens.error ?? ''}`);
  return { refused: false, tokens };
}
