// @ts-check
// The runtime hop's security pieces: proves nothing by itself; the request hooks that make the
// CopilotKit runtime (1) forward the token the app put in `properties` as an `Authorization` header
// and (2) refuse to run, replay or stop a thread for anyone but the user who started it.
//
// Why (1): CopilotKit puts `properties` into `RunAgentInput.forwardedProps`, never into a header,
// and runtime 1.75 turns nothing in `forwardedProps` into a header for an HttpAgent
// (shared/reference/copilotkit.md §2.2, §2.4). agui-server can read the body token too, but the
// header is the documented, auditable path (DESIGN "The flow of one run").
//
// Why (2): the runtime's default InMemoryAgentRunner keeps every thread's events in the process and
// REPLAYS them on `POST /agent/:id/connect` without calling agui-server at all (copilotkit.md §2.3:
// "connect replays history and never calls /chat"). Without a check here, anyone who learns a
// thread id reads another user's conversation. So the hop verifies the caller's token through
// agui-server's `GET /whoami` (the same verification agui-server applies to `/chat`; cached briefly)
// and compares the verified (issuer, subject) with the thread's recorded owner; anyone else gets
// agui-server's own answer for a thread that does not exist (404 thread_not_found).

import { createHash } from 'node:crypto';

/** How long a verified identity is reused before `/whoami` is asked again (never past `exp`). */
export const IDENTITY_CACHE_MS = 30_000;
const IDENTITY_CACHE_MAX = 1_000;
const BEARER = /^bearer\s+(\S+)$/i;

/**
 * Extracts the token from an `Authorization: Bearer <token>` header value.
 *
 * @param {string|null} header the header value
 * @returns {string|undefined}
 */
export function bearerToken(header) {
  const match = header ? BEARER.exec(header.trim()) : null;
  return match ? match[1] : undefined;
}

/**
 * The bridge: a copy of `request` whose `Authorization` header carries
 * `forwardedProps.authorization` from the JSON body, when the request has no `Authorization` header
 * of its own. Anything else (a header already present, no JSON body, no such property) leaves the
 * request unchanged and returns undefined, as the runtime's `onRequest` hook expects.
 *
 * @param {Request} request the incoming request
 * @returns {Promise<Request|undefined>}
 */
export async function bridgePropertiesToHeader(request) {
  if (request.method !== 'POST' || request.headers.has('authorization')) return undefined;
  if (!(request.headers.get('content-type') ?? '').includes('json')) return undefined;
  // clone(): the run handler reads the body afterwards (copilotkit.md §2.4).
  const body = await jsonBody(request);
  const props = body?.forwardedProps;
  const value = props && typeof props === 'object' ? /** @type {Record<string, unknown>} */ (props).authorization : undefined;
  if (typeof value !== 'string' || value.trim() === '') return undefined;
  // The app may send the raw token or "Bearer <token>"; agui-server strips the prefix the same way.
  const token = bearerToken(value) ?? value.trim();
  if (/\s/.test(token)) return undefined;
  const headers = new Headers(request.headers);
  headers.set('authorization', `Bearer ${token}`);
  return new Request(request, { headers });
}

/**
 * The JSON object a request carries, read from a clone (the runtime reads the body afterwards);
 * null when the body is not a JSON object.
 *
 * @param {Request} request
 * @returns {Promise<Record<string, unknown>|null>}
 */
async function jsonBody(request) {
  /** @type {unknown} */
  const body = await request.clone().json().catch(() => null);
  return body && typeof body === 'object' && !Array.isArray(body) ? /** @type {Record<string, unknown>} */ (body) : null;
}

/**
 * The identity agui-server verified (its `GET /whoami`; the fields the hop uses).
 *
 * @typedef {{issuer: string, subject: string, name?: string | null}} Identity
 */

/**
 * What {@link IdentityVerifier.verify} concludes: the identity, or agui-server's refusal to pass on.
 *
 * @typedef {{ok: true, identity: Identity} |
 *   {ok: false, status: number, body: string, wwwAuthenticate?: string}} Verdict
 */

/**
 * Verifies tokens through agui-server's `GET /whoami` and remembers the verified identity for a
 * short time (at most {@link IDENTITY_CACHE_MS}, and never past the token's own `exp`), keyed by a
 * hash of the token so that no token is kept in memory as a map key.
 */
export class IdentityVerifier {
  /**
   * @param {{whoamiUrl: string, fetch?: typeof fetch, now?: () => number}} options
   */
  constructor({ whoamiUrl, fetch: fetchImpl = globalThis.fetch, now = Date.now }) {
    this.whoamiUrl = whoamiUrl;
    this.fetch = fetchImpl;
    this.now = now;
    /** @type {Map<string, {identity: Identity, until: number}>} */
    this.cache = new Map();
    /** Number of `/whoami` calls made (tests prove the cache with it). */
    this.lookups = 0;
  }

  /**
   * @param {string} token a bearer token
   * @returns {Promise<Verdict>}
   */
  async verify(token) {
    const key = createHash('sha256').update(token).digest('base64url');
    const now = this.now();
    const hit = this.cache.get(key);
    if (hit && hit.until > now) return { ok: true, identity: hit.identity };
    if (hit) this.cache.delete(key);

    this.lookups += 1;
    let response;
    try {
      response = await this.fetch(this.whoamiUrl, { headers: { authorization: `Bearer ${token}` } });
    } catch {
      return { ok: false, status: 502, body: JSON.stringify({ error: 'upstream_unavailable', message: 'agui-server is not reachable' }) };
    }
    const body = await response.text();
    if (response.status !== 200) {
      // Pass agui-server's own verdict on: 401 invalid_token (expired, bad signature…) or 403.
      return {
        ok: false,
        status: response.status,
        body,
        wwwAuthenticate: response.headers.get('www-authenticate') ?? undefined,
      };
    }
    const identity = parseIdentity(body);
    if (!identity) {
      return { ok: false, status: 502, body: JSON.stringify({ error: 'upstream_invalid', message: 'unexpected /whoami answer' }) };
    }
    this.remember(key, identity, Math.min(now + IDENTITY_CACHE_MS, expiryMs(token) ?? Infinity));
    return { ok: true, identity };
  }

  /**
   * @param {string} key the token's hash
   * @param {Identity} identity
   * @param {number} until ms since the epoch
   */
  remember(key, identity, until) {
    if (until <= this.now()) return;
    if (this.cache.size >= IDENTITY_CACHE_MAX) {
      const now = this.now();
      for (const [k, v] of this.cache) if (v.until <= now) this.cache.delete(k);
      // Still full: drop the oldest entries (Map keeps insertion order).
      for (const k of this.cache.keys()) {
        if (this.cache.size < IDENTITY_CACHE_MAX) break;
        this.cache.delete(k);
      }
    }
    this.cache.set(key, { identity, until });
  }
}

/**
 * A `/whoami` answer as an identity, or null when it is not one (not JSON, not an object, no
 * string issuer and subject): never an exception out of the runtime's hook.
 *
 * @param {string} body
 * @returns {Identity|null}
 */
export function parseIdentity(body) {
  let value;
  try {
    value = JSON.parse(body);
  } catch {
    return null;
  }
  if (!value || typeof value !== 'object' || typeof value.issuer !== 'string' || typeof value.subject !== 'string') return null;
  return { issuer: value.issuer, subject: value.subject, name: typeof value.name === 'string' ? value.name : null };
}

/**
 * The token's `exp` in ms, read WITHOUT verification: it may only shorten the cache lifetime
 * (agui-server already verified the token; a forged `exp` cannot extend anything).
 *
 * @param {string} token
 * @returns {number|undefined}
 */
function expiryMs(token) {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));
    return typeof payload.exp === 'number' ? payload.exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Who owns which thread. A thread is owned by the first verified user who RUNS on it; `connect`
 * and `stop` never claim a thread. Entries are never evicted: the runner they protect keeps every
 * thread for the life of the process too, and forgetting an owner would reopen the thread.
 */
export class ThreadOwners {
  constructor() {
    /** @type {Map<string, string>} */
    this.owners = new Map();
  }

  /**
   * Decides whether `owner` may perform `method` on `threadId`, claiming the thread on a first run.
   *
   * @param {'agent/run'|'agent/connect'|'agent/stop'} method the runtime route
   * @param {string} threadId the thread
   * @param {string} owner the caller's identity key ({@link ownerKey})
   * @returns {boolean}
   */
  authorize(method, threadId, owner) {
    const current = this.owners.get(threadId);
    if (current === undefined) {
      // Nothing is stored for an unowned thread, so connecting to it reveals nothing.
      if (method === 'agent/run') this.owners.set(threadId, owner);
      return true;
    }
    return current === owner;
  }
}

/**
 * The identity a thread belongs to: the verified issuer and subject (a subject alone is only unique
 * per issuer, OIDC Core §2).
 *
 * @param {{issuer: string, subject: string}} identity from `/whoami`
 * @returns {string}
 */
export function ownerKey(identity) {
  return JSON.stringify([identity.issuer, identity.subject]);
}

/**
 * Builds the runtime's `onBeforeHandler` hook: authenticates and authorizes every thread-bearing
 * route and refuses the routes this deployment does not offer. Refusals are thrown `Response`s,
 * which the runtime sends as they are (`core/hooks.ts`: "Throw a Response to short-circuit").
 *
 * @param {{verifier: IdentityVerifier, owners: ThreadOwners, log?: (line: string) => void}} options
 * @returns {(ctx: {request: Request, route: {method: string, agentId?: string, threadId?: string}}) => Promise<void>}
 */
export function threadGuard({ verifier, owners, log = () => {} }) {
  return async ({ request, route }) => {
    /** @type {unknown} */
    let threadId;
    switch (route.method) {
      case 'info':
        return; // the agent list; no thread, nothing private
      case 'agent/stop':
        threadId = route.threadId;
        break;
      case 'agent/run':
      case 'agent/connect': {
        threadId = (await jsonBody(request))?.threadId;
        break;
      }
      default:
        // Suggestions, transcription, Intelligence threads and memories are not offered here.
        throw jsonResponse(404, { error: 'not_found', message: `${route.method} is not available` });
    }
    if (typeof threadId !== 'string' || threadId === '') {
      throw jsonResponse(400, { error: 'invalid_request', message: 'threadId is required' });
    }

    const token = bearerToken(request.headers.get('authorization'));
    if (!token) {
      throw jsonResponse(401, { error: 'unauthorized', message: 'sign in first' }, { 'www-authenticate': 'Bearer' });
    }
    const verdict = await verifier.verify(token);
    if (!verdict.ok) {
      /** @type {Record<string, string>} */
      const headers = { 'content-type': 'application/json' };
      if (verdict.wwwAuthenticate) headers['www-authenticate'] = verdict.wwwAuthenticate;
      throw new Response(verdict.body, { status: verdict.status, headers });
    }
    if (!owners.authorize(route.method, threadId, ownerKey(verdict.identity))) {
      log(`refused ${route.method} on another user's thread (caller subject ${verdict.identity.subject})`);
      // The same answer as for a thread that does not exist, as agui-server gives (DESIGN: a
      // thread's existence is not revealed to anyone but its owner).
      throw jsonResponse(404, { error: 'thread_not_found', message: 'No such thread.' });
    }
  };
}

/**
 * @param {number} status
 * @param {{error: string, message: string}} body our JSON error
 * @param {Record<string, string>} [headers]
 * @returns {Response}
 */
function jsonResponse(status, body, headers = {}) {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers },
  });
}
