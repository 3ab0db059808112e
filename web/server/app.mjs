// The runtime hop as a module: proves nothing by itself; one node:http server on one origin that
// serves the built app (web/dist), the app's runtime settings (/config.json) and the CopilotKit
// runtime (/api/copilotkit, @copilotkit/runtime/v2, multi-route mode) whose agents are agui-server's
// chat endpoints reached through @ag-ui/client's HttpAgent. One origin means no CORS anywhere
// (shared/reference/copilotkit.md §7.2).
//
// Telemetry: the runtime reports usage unless COPILOTKIT_TELEMETRY_DISABLED is set
// (copilotkit.md §6 gotcha 2), so this module sets it BEFORE the runtime is imported.

import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import { extname, join, normalize, resolve, sep } from 'node:path';

import { bridgePropertiesToHeader, IdentityVerifier, ThreadOwners, threadGuard } from './guard.mjs';

process.env.COPILOTKIT_TELEMETRY_DISABLED = 'true';
process.env.DO_NOT_TRACK = '1';
const { HttpAgent } = await import('@ag-ui/client');
const { CopilotRuntime } = await import('@copilotkit/runtime/v2');
const { createCopilotNodeListener } = await import('@copilotkit/runtime/v2/node');

/** Where the runtime is mounted; the app's `runtimeUrl`. */
export const RUNTIME_BASE_PATH = '/api/copilotkit';
/** Same-origin pass-through to agui-server's `GET /whoami` (the app shows who the SERVER verified). */
export const WHOAMI_PATH = '/api/whoami';

const CONTENT_TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.woff': 'font/woff',
  '.ttf': 'font/ttf',
  '.wasm': 'application/wasm',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json',
};

/**
 * Creates (does not start) the web server.
 *
 * @param {object} options
 * @param {string} options.aguiUrl agui-server's base URL, e.g. `http://127.0.0.1:8080`
 * @param {{authority: string, clientId: string, scope: string, silentRenew?: boolean}} options.oidc
 *   what the app needs to sign in (served as /config.json; nothing secret: a public client)
 * @param {string} [options.distDir] the built app (default web/dist)
 * @param {string[]} [options.namedAgents] extra agents, each reached at `/agents/<id>/chat`
 * @param {(line: string) => void} [options.log] log sink (never given tokens)
 * @returns {{server: import('node:http').Server, verifier: IdentityVerifier, owners: ThreadOwners}}
 */
export function createWebServer({ aguiUrl, oidc, distDir, namedAgents = [], log = () => {} }) {
  const base = aguiUrl.replace(/\/+$/, '');
  const dist = resolve(distDir ?? new URL('../dist', import.meta.url).pathname);
  const agents = { default: new HttpAgent({ url: `${base}/chat` }) };
  for (const id of namedAgents) {
    if (!/^[A-Za-z0-9_-]+$/.test(id)) throw new Error(`invalid agent id ${JSON.stringify(id)}`);
    agents[id] = new HttpAgent({ url: `${base}/agents/${id}/chat` });
  }

  const runtime = new CopilotRuntime({
    agents,
    // Only the user's token goes on to agui-server: no x-* header from the browser leaks through
    // (copilotkit.md §2.3, the allowlist mode of `forwardHeaders`).
    forwardHeaders: { allow: ['authorization'] },
  });
  const verifier = new IdentityVerifier({ whoamiUrl: `${base}/whoami` });
  const owners = new ThreadOwners();
  const copilot = createCopilotNodeListener({
    runtime,
    basePath: RUNTIME_BASE_PATH,
    cors: false,
    hooks: {
      // Runs before routing: properties → Authorization header (copilotkit.md §2.4).
      onRequest: ({ request }) => bridgePropertiesToHeader(request),
      // Runs after routing, with the route: the thread-leak guard.
      onBeforeHandler: threadGuard({ verifier, owners, log }),
    },
  });

  const appConfig = JSON.stringify({
    authority: oidc.authority,
    clientId: oidc.clientId,
    scope: oidc.scope,
    silentRenew: oidc.silentRenew !== false,
    runtimeUrl: RUNTIME_BASE_PATH,
  });

  const server = createServer((req, res) => {
    const path = new URL(req.url, 'http://web').pathname;
    if (path === RUNTIME_BASE_PATH || path.startsWith(`${RUNTIME_BASE_PATH}/`)) {
      copilot(req, res);
      return;
    }
    if (path === WHOAMI_PATH) {
      proxyWhoami(`${base}/whoami`, req, res).catch(() => {
        if (!res.headersSent) send(res, 502, 'application/json', JSON.stringify({ error: 'upstream_unavailable' }));
      });
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/config.json') {
      send(res, 200, 'application/json', appConfig, { 'cache-control': 'no-store' });
      return;
    }
    serveStatic(dist, path, req, res).catch((error) => {
      log(`static ${path}: ${error.message}`);
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', 'internal error');
    });
  });
  return { server, verifier, owners };
}

// Only the Authorization header goes upstream; the answer (identity or agui-server's 401/403 with
// its WWW-Authenticate challenge) comes back unchanged.
async function proxyWhoami(url, req, res) {
  if (req.method !== 'GET') {
    res.writeHead(405, { allow: 'GET' }).end();
    return;
  }
  const headers = {};
  if (req.headers.authorization) headers.authorization = req.headers.authorization;
  const upstream = await fetch(url, { headers });
  const out = { 'content-type': upstream.headers.get('content-type') ?? 'application/json', 'cache-control': 'no-store' };
  const challenge = upstream.headers.get('www-authenticate');
  if (challenge) out['www-authenticate'] = challenge;
  res.writeHead(upstream.status, out);
  res.end(await upstream.text());
}

async function serveStatic(dist, path, req, res) {
  let decoded;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    send(res, 400, 'text/plain; charset=utf-8', 'bad path');
    return;
  }
  const file = normalize(join(dist, decoded));
  if (file !== dist && !file.startsWith(dist + sep)) {
    send(res, 403, 'text/plain; charset=utf-8', 'forbidden');
    return;
  }
  let target = file;
  let info = await stat(target).catch(() => null);
  if (info?.isDirectory()) {
    target = join(target, 'index.html');
    info = await stat(target).catch(() => null);
  }
  if (!info?.isFile()) {
    // Client-side routes (the OIDC redirect lands on "/?code=…") get the app; missing assets 404.
    if (extname(decoded) !== '') {
      send(res, 404, 'text/plain; charset=utf-8', 'not found');
      return;
    }
    target = join(dist, 'index.html');
    info = await stat(target).catch(() => null);
    if (!info?.isFile()) {
      send(res, 503, 'text/plain; charset=utf-8', 'the app is not built: run `npm run build` in web/');
      return;
    }
  }
  // Hashed build assets never change; everything else is revalidated.
  const immutable = decoded.startsWith('/assets/');
  res.writeHead(200, {
    'content-type': CONTENT_TYPES[extname(target)] ?? 'application/octet-stream',
    'content-length': info.size,
    'cache-control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
  });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  createReadStream(target).pipe(res);
}

function send(res, status, type, body, headers = {}) {
  res.writeHead(status, { 'content-type': type, 'x-content-type-options': 'nosniff', ...headers });
  res.end(body);
}
