// Configuration of the test IdP: proves nothing by itself; turns our small settings object (defaults
// below, optionally overridden by a JSON file) into an oidc-provider 9.13.3 configuration that issues
// RFC 9068 JWT access tokens (`typ: at+jwt`) for agui-server through client_credentials.
//
// Shape of a settings file (every member optional; objects are merged over the defaults by key):
//   {
//     "audience": "agui-server",                    // `aud` of tokens for the default resource
//     "defaultResource": "http://agui-server",      // resource indicator used when none is requested
//     "resourceServers": { "<resource>": { "audience": "...", "scope": "a b", "accessTokenTTL": 600,
//                                          "accessTokenFormat": "jwt" | "opaque" } },
//     "signingAlg": "RS256" | "ES256",
//     "clients": [ { <oidc-provider client metadata>, "claims": { "name", "email", "roles" } } ],
//     "accounts": { "<sub>": { "name", "email", "roles" } },
//     "devInteractions": false,                     // oidc-provider's any-password login page
//     "showDemoAccounts": false,                    // list the accounts on the login page (demo only)
//     "logoutWithoutConfirmation": ["<client_id>"]  // one-click sign-out for these clients (id_token_hint
//                                                   // + post_logout_redirect_uri required)
//   }
// `clients[].claims` are extra access-token claims for that client's client_credentials tokens;
// `accounts` are end users for interactive flows (a browser app adds a public PKCE client and
// accounts here; `findAccount` and `extraTokenClaims` already read them).

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

import { errors } from 'oidc-provider';

import { INTROSPECTOR, OPAQUE_RESOURCE } from './client.mjs';
import { SIGNING_ALGS } from './keys.mjs';
import { escapeHtml, page } from './login.mjs';

/** The resource indicator agui-server is known by (RFC 8707). */
export const AGUI_RESOURCE = 'http://agui-server';
/** A second resource server, for tokens agui-server must reject (wrong `aud`). */
export const OTHER_RESOURCE = 'http://other-api';
// OPAQUE_RESOURCE: agui-server again, but with **opaque** access tokens (RFC 7662
// introspection): `aud` is agui-server's audience, the token a random string only the IdP can
// check. INTROSPECTOR: the confidential client agui-server introspects with
// (`client_secret_basic`). Both are defined in client.mjs, which has no dependencies.
export { INTROSPECTOR, OPAQUE_RESOURCE };

/**
 * Built-in settings: a confidential service client whose tokens carry only the standard claims
 * (`sub` = the client id, as oidc-provider sets for client_credentials), one whose tokens also
 * carry `name`, `email` and `roles`, so tests can predict every identity claim, and the client
 * agui-server introspects opaque tokens with.
 */
export const DEFAULT_SETTINGS = Object.freeze({
  audience: 'agui-server',
  defaultResource: AGUI_RESOURCE,
  signingAlg: 'RS256',
  accessTokenTTL: 600,
  resourceServers: {
    [AGUI_RESOURCE]: { scope: 'agui:chat agui:tools agui:admin' },
    [OTHER_RESOURCE]: { audience: 'other-api', scope: 'other:read' },
    [OPAQUE_RESOURCE]: { audience: 'agui-server', scope: 'agui:chat', accessTokenFormat: 'opaque' },
  },
  clients: [
    {
      client_id: 'agui-tests',
      client_secret: 'agui-tests-secret',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
    },
    {
      client_id: 'agui-tests-named',
      client_secret: 'agui-tests-named-secret',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      claims: { name: 'Ada Lovelace', email: 'ada@example.test', roles: ['analyst'] },
    },
    {
      // Introspects tokens for agui-server; gets no tokens of its own worth using.
      client_id: INTROSPECTOR.clientId,
      client_secret: INTROSPECTOR.clientSecret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  accounts: {},
});

/**
 * Reads a settings file and merges it over the defaults.
 *
 * @param {string|undefined} file path of a JSON settings file, or undefined for the defaults
 * @param {{audience?: string}} [overrides] command-line overrides, applied last
 * @returns {object} the effective settings
 */
export function loadSettings(file, overrides = {}) {
  const fromFile = file ? JSON.parse(readFileSync(file, 'utf8')) : {};
  const settings = {
    ...DEFAULT_SETTINGS,
    ...fromFile,
    resourceServers: { ...DEFAULT_SETTINGS.resourceServers, ...fromFile.resourceServers },
    accounts: { ...DEFAULT_SETTINGS.accounts, ...fromFile.accounts },
  };
  if (overrides.audience) settings.audience = overrides.audience;
  if (!SIGNING_ALGS.includes(settings.signingAlg)) {
    throw new Error(`signingAlg must be one of ${SIGNING_ALGS.join(', ')}`);
  }
  if (!settings.resourceServers[settings.defaultResource]) {
    throw new Error(`defaultResource ${settings.defaultResource} is not in resourceServers`);
  }
  return settings;
}

/**
 * Builds the oidc-provider configuration.
 *
 * @param {object} settings effective settings from {@link loadSettings}
 * @param {object[]} jwks private signing JWKs, newest first (published in this order)
 * @param {string[]} cookieKeys cookie signing keys; kept across rotations so sessions survive
 * @returns {object} the second argument of `new Provider(issuer, configuration)`
 */
export function providerConfiguration(settings, jwks, cookieKeys) {
  // oidc-provider rejects unknown client metadata, so our `claims` extension is split off here.
  const clientClaims = new Map();
  const clients = settings.clients.map(({ claims, ...metadata }) => {
    if (claims) clientClaims.set(metadata.client_id, claims);
    return metadata;
  });
  // The key that signs: the first (newest) published key of the configured algorithm.
  const signingKid = jwks.find((k) => k.alg === settings.signingAlg).kid;

  return {
    clients,
    jwks: { keys: jwks },
    cookies: { keys: cookieKeys },
    scopes: ['openid', 'offline_access', 'profile', 'email'],
    claims: { openid: ['sub'], profile: ['name'], email: ['email'] },
    ttl: {
      // Service tokens live as long as their resource server says (RFC 9068 §2.2 `exp`).
      ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? settings.accessTokenTTL,
    },
    features: {
      clientCredentials: { enabled: true },
      // RFC 7662 introspection (for opaque tokens) and RFC 7009 revocation. Only the introspector
      // client may introspect: a token's holder must not learn more about it than it carries.
      introspection: {
        enabled: true,
        allowedPolicy: async (_ctx, client) => client.clientId === INTROSPECTOR.clientId,
      },
      revocation: { enabled: true },
      // Self-contained logout pages: oidc-provider's stock ones @import a Google web font, so a
      // sign-out would reach out of loopback.
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: async (ctx, form) => {
          if (skipsLogoutConfirmation(settings, ctx)) {
            // The app's own sign-out (its id token as the hint, a registered return address): the
            // form is submitted at once with `logout=yes`, so signing out is one click in the app.
            ctx.set('content-security-policy', `default-src 'none'; script-src '${AUTO_LOGOUT_SCRIPT_HASH}'; frame-ancestors 'none'`);
            ctx.body = page(
              'Signing out',
              `${form.replace('</form>', '<input type="hidden" name="logout" value="yes"/></form>')}
              <p class="lead">Signing out…</p><noscript><button type="submit" form="op.logoutForm">Sign out</button></noscript>
              <script>${AUTO_LOGOUT_SCRIPT}</script>`,
            );
            return;
          }
          ctx.body = page(
            'Sign out',
            `<p class="lead">Do you want to sign out from ${escapeHtml(ctx.host)}?</p>${form}
            <button autofocus type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>
            <p><button type="submit" form="op.logoutForm" class="secondary">No, stay signed in</button></p>`,
          );
        },
        postLogoutSuccessSource: async (ctx) => {
          ctx.body = page('Signed out', '<p class="lead">Your sign-out was successful.</p>');
        },
      },
      // The login page that accepts any user: off unless a browser demo asks for it.
      devInteractions: { enabled: settings.devInteractions === true },
      // RFC 8707 resource indicators are what make oidc-provider issue JWT access tokens
      // (RFC 9068) instead of opaque ones: the token's format and `aud` come from the resource server.
      resourceIndicators: {
        enabled: true,
        defaultResource: async (_ctx, _client, oneOf) => oneOf ?? settings.defaultResource,
        // Interactive flows: a token requested without `resource` is for the granted resource.
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, resource) => resourceServerInfo(settings, resource, signingKid),
      },
    },
    // The error page, self-contained too (the stock one imports the same web font).
    renderError: async (ctx, out) => {
      ctx.type = 'html';
      ctx.body = page(
        'Something went wrong',
        Object.entries(out)
          .map(([key, value]) => `<p><b>${escapeHtml(key)}</b>: ${escapeHtml(value)}</p>`)
          .join(''),
      );
    },
    // Identity claims in the access token itself: agui-server builds its Principal from the
    // access token only (DESIGN "Keys and claims across vendors"), never from userinfo.
    extraTokenClaims: async (_ctx, token) => {
      if (token.accountId) return identityClaims(settings.accounts[token.accountId]);
      return identityClaims(clientClaims.get(token.clientId));
    },
    findAccount: async (_ctx, sub) => {
      const account = settings.accounts[sub];
      if (!account) return undefined;
      return { accountId: sub, claims: async () => ({ sub, ...identityClaims(account) }) };
    },
  };
}

// The one script of the automatic sign-out page, allowed by its hash.
const AUTO_LOGOUT_SCRIPT = "document.getElementById('op.logoutForm').submit();";
const AUTO_LOGOUT_SCRIPT_HASH = `sha256-${createHash('sha256').update(AUTO_LOGOUT_SCRIPT).digest('base64')}`;

/**
 * True when RP-initiated logout may skip the confirmation page: the client is listed in
 * `settings.logoutWithoutConfirmation`, its id token came as `id_token_hint` (validated by
 * oidc-provider, which also made it the request's client) and it asked to come back to a
 * registered `post_logout_redirect_uri`. Anything else (a bare link to /session/end, another
 * client) still asks, so a page cannot sign a user out behind her back.
 *
 * @param {object} settings
 * @param {any} ctx oidc-provider's Koa context
 * @returns {boolean}
 */
function skipsLogoutConfirmation(settings, ctx) {
  const allowed = settings.logoutWithoutConfirmation ?? [];
  const clientId = ctx.oidc?.client?.clientId;
  return (
    Boolean(clientId) &&
    allowed.includes(clientId) &&
    Boolean(ctx.oidc.entities?.IdTokenHint) &&
    typeof ctx.oidc.params?.post_logout_redirect_uri === 'string'
  );
}

function resourceServerInfo(settings, resource, signingKid) {
  const server = settings.resourceServers[resource];
  if (!server) {
    // Unknown resource indicator: RFC 8707 §2 `invalid_target`.
    throw new errors.InvalidTarget('unknown resource indicator');
  }
  const info = {
    scope: server.scope,
    audience: server.audience ?? (resource === settings.defaultResource ? settings.audience : resource),
    accessTokenTTL: server.accessTokenTTL ?? settings.accessTokenTTL,
    accessTokenFormat: server.accessTokenFormat ?? 'jwt',
  };
  if (info.accessTokenFormat === 'jwt') info.jwt = { sign: { alg: settings.signingAlg, kid: signingKid } };
  return info;
}

function identityClaims(source) {
  if (!source) return undefined;
  const claims = {};
  for (const key of ['name', 'email', 'roles']) {
    if (source[key] !== undefined) claims[key] = source[key];
  }
  return Object.keys(claims).length > 0 ? claims : undefined;
}
