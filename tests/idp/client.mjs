// Client helpers for the test IdP: proves nothing by itself; mints access tokens by
// client_credentials (RFC 6749 §4.4, with an RFC 8707 `resource`), decodes JWTs for assertions
// (no verification: that is agui-server's job) and drives the test-only admin routes.
// No dependencies, so both conformance trees can import it by relative path.

// Captured at import: suites wrap globalThis.fetch to record the server's raw bytes, and IdP
// traffic must not show up in those recordings.
const nativeFetch = globalThis.fetch;

/** Credentials of the built-in service clients (see config.mjs DEFAULT_SETTINGS). */
export const TEST_CLIENTS = Object.freeze({
  plain: Object.freeze({ clientId: 'agui-tests', clientSecret: 'agui-tests-secret' }),
  named: Object.freeze({
    clientId: 'agui-tests-named',
    clientSecret: 'agui-tests-named-secret',
    claims: Object.freeze({ name: 'Ada Lovelace', email: 'ada@example.test', roles: Object.freeze(['analyst']) }),
  }),
});

/** The client that may introspect (see config.mjs INTROSPECTOR), and the opaque resource. */
export const INTROSPECTOR = Object.freeze({ clientId: 'agui-introspector', clientSecret: 'agui-introspector-secret' });
export const OPAQUE_RESOURCE = 'http://agui-server-opaque';

function basic(clientId, clientSecret) {
  // RFC 6749 §2.3.1: client id and secret are form-urlencoded before they go into Basic.
  return `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}`;
}

/**
 * RFC 7662 introspection of `token` as the introspector client.
 *
 * @param {{issuer: string, token: string, clientId?: string, clientSecret?: string}} options
 * @returns {Promise<object>} the introspection answer
 */
export async function introspect({ issuer, token, clientId = INTROSPECTOR.clientId, clientSecret = INTROSPECTOR.clientSecret }) {
  const response = await nativeFetch(`${issuer}/token/introspection`, {
    method: 'POST',
    headers: { authorization: basic(clientId, clientSecret), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token }),
  });
  if (response.status !== 200) throw new Error(`introspection: HTTP ${response.status}`);
  return response.json();
}

/**
 * RFC 7009 revocation of `token` by the client it was issued to.
 *
 * @param {{issuer: string, token: string, clientId: string, clientSecret: string}} options
 */
export async function revokeToken({ issuer, token, clientId, clientSecret }) {
  const response = await nativeFetch(`${issuer}/token/revocation`, {
    method: 'POST',
    headers: { authorization: basic(clientId, clientSecret), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token, token_type_hint: 'access_token' }),
  });
  if (response.status !== 200) throw new Error(`revocation: HTTP ${response.status}`);
}

/**
 * Requests an access token with the client_credentials grant.
 *
 * @param {{issuer: string, clientId: string, clientSecret: string, resource?: string, scope?: string}} options
 * @returns {Promise<string>} the access token (a JWT, or opaque for OPAQUE_RESOURCE)
 * @throws {Error} when the token endpoint answers anything but 200 with an access token
 */
export async function requestToken({ issuer, clientId, clientSecret, resource, scope = 'agui:chat' }) {
  const form = new URLSearchParams({ grant_type: 'client_credentials' });
  if (scope) form.set('scope', scope);
  if (resource) form.set('resource', resource);
  // RFC 6749 §2.3.1: client id and secret are form-urlencoded before they go into Basic.
  const basic = Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64');
  const response = await nativeFetch(`${issuer}/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: form,
  });
  const body = await response.json().catch(() => ({}));
  if (response.status !== 200 || typeof body.access_token !== 'string') {
    // Never echo a token; the error body of a failed grant holds none.
    throw new Error(`token request failed: HTTP ${response.status} ${body.error ?? ''} ${body.error_description ?? ''}`);
  }
  return body.access_token;
}

/**
 * Splits a compact JWS into its decoded header and payload, without verifying anything.
 *
 * @param {string} jwt a compact JWS
 * @returns {{header: object, payload: object}}
 */
export function decodeJwt(jwt) {
  const [header, payload] = jwt.split('.').slice(0, 2).map((part) => JSON.parse(Buffer.from(part, 'base64url')));
  return { header, payload };
}

/**
 * Reads the IdP's test health document: issuer, current signing kid, published kids, request counts.
 *
 * @param {string} issuer the IdP's issuer URL
 * @returns {Promise<{status: string, issuer: string, generation: number, signingKid: string,
 *   kids: string[], requests: {discovery: number, jwks: number, token: number}}>}
 */
export async function idpHealth(issuer) {
  const response = await nativeFetch(`${issuer}/__test/health`);
  if (response.status !== 200) throw new Error(`idp health: HTTP ${response.status}`);
  return response.json();
}

/**
 * Rotates the IdP's signing keys: new kids sign from now on and are published first.
 *
 * @param {string} issuer the IdP's issuer URL
 * @param {{retire?: boolean}} [options] `retire: true` also unpublishes the previous keys
 * @returns {Promise<object>} the health document after the rotation
 */
export async function rotateKeys(issuer, { retire = false } = {}) {
  const response = await nativeFetch(`${issuer}/__test/rotate`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ retire }),
  });
  if (response.status !== 200) throw new Error(`idp rotate: HTTP ${response.status}`);
  return response.json();
}
