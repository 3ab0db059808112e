// The test IdP as a module: proves nothing by itself; runs a real, OpenID-certified provider
// (panva/oidc-provider 9.13.3) on loopback behind a small node:http front that adds test-only
// routes, counts discovery/JWKS/token requests and rotates signing keys without a restart.
//
// Why a front server: oidc-provider's keystore is fixed when the Provider is constructed. A rotation
// therefore builds a NEW Provider with the same issuer, clients, cookie keys and settings but a new
// key set, and the front swaps which instance answers. Stored state (grants, sessions, interactions)
// survives because oidc-provider's default MemoryAdapter keeps it in module-level storage shared by
// every Provider in the process.

import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';

import Provider from 'oidc-provider';

import { providerConfiguration } from './config.mjs';
import { generateKeyGeneration } from './keys.mjs';
import { passwordLoginRoutes } from './login.mjs';

/** Paths of the test-only routes (never part of a real IdP). */
export const TEST_ROUTES = Object.freeze({ health: '/__test/health', rotate: '/__test/rotate' });

// oidc-provider's default endpoint paths (its `routes` option, left at defaults).
const COUNTED_PATHS = Object.freeze({
  '/.well-known/openid-configuration': 'discovery',
  '/jwks': 'jwks',
  '/token': 'token',
});

const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);

/**
 * Starts the IdP on `host:port` (port 0 = any free port).
 *
 * @param {{host?: string, port?: number, settings: object}} options settings from loadSettings()
 * @returns {Promise<{issuer: string, port: number, rotate: (opts?: {retire?: boolean}) => object,
 *   health: () => object, close: () => Promise<void>}>}
 */
export async function startIdp({ host = '127.0.0.1', port = 0, settings }) {
  const counts = { discovery: 0, jwks: 0, token: 0 };
  const cookieKeys = [randomBytes(32).toString('base64url')];
  let generation = 0;
  let keys = generateKeyGeneration(String(generation));
  let provider;
  let handler;
  // Hook (web demo, login.mjs): the password login page, when the settings ask for it.
  const loginRoutes = settings.passwordLogin === true ? passwordLoginRoutes(settings) : null;

  const front = createServer((req, res) => {
    // Everything binds to loopback, but the admin routes check the peer too (defence in depth).
    if (!LOOPBACK.has(req.socket.remoteAddress)) {
      res.writeHead(403).end();
      return;
    }
    const path = new URL(req.url, 'http://idp').pathname;
    if (path === TEST_ROUTES.health && req.method === 'GET') {
      sendJson(res, 200, health());
      return;
    }
    if (path === TEST_ROUTES.rotate && req.method === 'POST') {
      readJson(req)
        .then((body) => sendJson(res, 200, rotate({ retire: body?.retire === true })))
        .catch((error) => sendJson(res, 400, { error: 'invalid_request', message: error.message }));
      return;
    }
    const counter = COUNTED_PATHS[path];
    if (counter) counts[counter] += 1;
    if (loginRoutes?.(req, res, provider)) return;
    handler(req, res);
  });

  await new Promise((resolve, reject) => {
    front.once('error', reject);
    front.listen(port, host, resolve);
  });
  const boundPort = front.address().port;
  const issuer = `http://${host}:${boundPort}`;

  function install() {
    provider = new Provider(issuer, providerConfiguration(settings, keys, cookieKeys));
    handler = provider.callback();
  }

  function signingKid() {
    return keys.find((k) => k.alg === settings.signingAlg).kid;
  }

  function publicKids() {
    return keys.map((k) => k.kid);
  }

  function health() {
    return { status: 'ok', issuer, generation, signingKid: signingKid(), kids: publicKids(), requests: { ...counts } };
  }

  // New keys go FIRST: they sign from now on, and a JWKS consumer that scans in order meets them
  // first. The previous keys stay published (unless `retire`) so tokens minted before the
  // rotation remain verifiable until they expire: the overlap every real IdP provides.
  function rotate({ retire = false } = {}) {
    generation += 1;
    const fresh = generateKeyGeneration(String(generation));
    keys = retire ? fresh : [...fresh, ...keys];
    install();
    return health();
  }

  install();

  return {
    issuer,
    port: boundPort,
    rotate,
    health,
    close: () =>
      new Promise((resolve) => {
        front.close(() => resolve());
        front.closeAllConnections();
      }),
  };
}

function sendJson(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

async function readJson(req) {
  let text = '';
  for await (const chunk of req) {
    text += chunk;
    if (text.length > 4096) throw new Error('body too large');
  }
  return text.trim() === '' ? {} : JSON.parse(text);
}
