// @ts-check
// The web server as a module: proves nothing by itself; one node:http server on one origin that
// serves the built app (web/dist) and the app's runtime settings (/config.json), in one of two
// modes (DESIGN "agui-server as the CopilotKit runtime (direct mode)"):
//
//   direct (the default): the app talks to agui-server's own CopilotKit runtime protocol
//     (`runtimeUrl` = agui-server's origin + `/copilotkit`, CORS allowed there for this origin),
//     its `/whoami` and its `/copilotkit/threads`. This server is then only a static file host:
//     nothing under /api, and CopilotKit's Node runtime is never loaded.
//   hop: this server also runs CopilotKit's runtime (/api/copilotkit, @copilotkit/runtime/v2,
//     multi-route mode) whose agents are agui-server's chat endpoints reached through
//     @ag-ui/client's HttpAgent, plus same-origin pass-throughs to agui-server's `/whoami` and
//     `/copilotkit/threads`. One origin means no CORS anywhere (shared/reference/copilotkit.md §7.2).
//
// Telemetry: the runtime reports usage unless COPILOTKIT_TELEMETRY_DISABLED is set
// (copilotkit.md §6 gotcha 2), so it is set BEFORE the runtime is imported.

import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import { extname, join, normalize, resolve, sep } from 'node:path';

import { bridgePropertiesToHeader, IdentityVerifier, ThreadOwners, threadGuard } from './guard.mjs';

/** The two ways the app reaches agui-server. */
export const MODES = /** @type {const} */ (['direct', 'hop']);
/** Where the hop mounts CopilotKit's runtime; the app's `runtimeUrl` in hop mode. */
export const RUNTIME_BASE_PATH = '/api/copilotkit';
/** Same-origin pass-through to agui-server's `GET /whoami` (hop mode). */
export const WHOAMI_PATH = '/api/whoami';
/** Same-origin pass-through to agui-server's `GET {runtime}/threads` (hop mode). */
export const THREADS_PATH = '/api/threads';
/** agui-server's `runtime.base_path` default. */
export const AGUI_RUNTIME_PATH = '/copilotkit';

/** @type {Record<string, string>} */
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
 * @param {string} options.aguiUrl agui-server's base URL as this server reaches it, e.g. `http://127.0.0.1:8080`
 * @param {string} [options.publicAguiUrl] agui-server's base URL as the browser reaches it
 *   (direct mode; default `aguiUrl`)
 * @param {string} [options.aguiRuntimePath] agui-server's `runtime.base_path` (default `/copilotkit`)
 * @param {'direct'|'hop'} [options.mode] how the app reaches agui-server (default `direct`)
 * @param {{authority: string, clientId: string, scope: string, silentRenew?: boolean}} options.oidc
 *   what the app needs to sign in (served as /config.json; nothing secret: a public client)
 * @param {{loginUrl: string}} [options.github] "Sign in with GitHub": agui-server's
 *   `/auth/github/login` as the browser reaches it (absent: the app shows no GitHub button)
 * @param {string} [options.distDir] the built app (default web/dist)
 * @param {string[]} [options.namedAgents] hop mode: extra agents, each reached at `/agents/<id>/chat`
 * @param {(line: string) => void} [options.log] log sink (never given tokens)
 * @returns {Promise<{server: import('node:http').Server, mode: 'direct'|'hop'}>}
 */
export async function createWebServer({
  aguiUrl,
  publicAguiUrl = aguiUrl,
  aguiRuntimePath = AGUI_RUNTIME_PATH,
  mode = 'direct',
  oidc,
  github,
  distDir,
  namedAgents = [],
  log = () => {},
}) {
  if (!MODES.includes(mode)) throw new Error(`invalid mode ${JSON.stringify(mode)} (direct or hop)`);
  const base = trimSlashes(aguiUrl);
  const publicBase = trimSlashes(publicAguiUrl);
  const runtimePath = `/${aguiRuntimePath.replace(/^\/+|\/+$/g, '')}`;
  const dist = resolve(distDir ?? new URL('../dist', import.meta.url).pathname);
  const copilot = mode === 'hop' ? await runtimeHop({ base, namedAgents, log }) : undefined;

  const appConfig = JSON.stringify({
    authority: oidc.authority,
    clientId: oidc.clientId,
    scope: oidc.scope,
    silentRenew: oidc.silentRenew !== false,
    mode,
    github: github ? { loginUrl: github.loginUrl } : null,
    ...(mode === 'hop'
      ? { runtimeUrl: RUNTIME_BASE_PATH, whoamiUrl: WHOAMI_PATH, threadsUrl: THREADS_PATH }
      : {
          runtimeUrl: `${publicBase}${runtimePath}`,
          whoamiUrl: `${publicBase}/whoami`,
          threadsUrl: `${publicBase}${runtimePath}/threads`,
        }),
  });

  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://web').pathname;
    if (path === '/api' || path.startsWith('/api/')) {
      if (!copilot) {
        // Direct mode: the app talks to agui-server itself; nothing is proxied here.
        send(res, 404, 'application/json', JSON.stringify({ error: 'not_found', message: 'direct mode: the app talks to agui-server' }));
      } else if (path === RUNTIME_BASE_PATH || path.startsWith(`${RUNTIME_BASE_PATH}/`)) {
        copilot(req, res);
      } else if (path === WHOAMI_PATH || path === THREADS_PATH) {
        const upstream = path === WHOAMI_PATH ? `${base}/whoami` : `${base}${runtimePath}/threads`;
        passThrough(upstream, req, res).catch(() => {
          if (!res.headersSent) send(res, 502, 'application/json', JSON.stringify({ error: 'upstream_unavailable' }));
        });
      } else {
        send(res, 404, 'application/json', JSON.stringify({ error: 'not_found' }));
      }
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
  return { server, mode };
}

/**
 * The hop: CopilotKit's Node runtime in front of agui-server's chat endpoints, with the
 * properties → header bridge and the thread-ownership guard (guard.mjs).
 *
 * @param {{base: string, namedAgents: string[], log: (line: string) => void}} options
 * @returns {Promise<(req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void>}
 */
async function runtimeHop({ base, namedAgents, log }) {
  process.env.COPILOTKIT_TELEMETRY_DISABLED = 'true';
  process.env.DO_NOT_TRACK = '1';
  const { HttpAgent } = await import('@ag-ui/client');
  const { CopilotRuntime } = await import('@copilotkit/runtime/v2');
  const { createCopilotNodeListener } = await import('@copilotkit/runtime/v2/node');

  /** @type {Record<string, InstanceType<typeof HttpAgent>>} */
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
  return createCopilotNodeListener({
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
}

/** @param {string} url */
function trimSlashes(url) {
  return url.replace(/\/+$/, '');
}

/** @typedef {import('node:http').IncomingMessage} IncomingMessage */
/** @typedef {import('node:http').ServerResponse} ServerResponse */

/**
 * A GET to agui-server with only the caller's Authorization header; the answer (the identity or
 * the thread list, or agui-server's 401/403 with its WWW-Authenticate challenge) comes back
 * unchanged.
 *
 * @param {string} url
 * @param {IncomingMessage} req
 * @param {ServerResponse} res
 */
async function passThrough(url, req, res) {
  if (req.method !== 'GET') {
    res.writeHead(405, { allow: 'GET' }).end();
    return;
  }
  /** @type {Record<string, string>} */
  const headers = {};
  if (req.headers.authorization) headers.authorization = req.headers.authorization;
  const upstream = await fetch(url, { headers });
  /** @type {Record<string, string>} */
  const out = { 'content-type': upstream.headers.get('content-type') ?? 'application/json', 'cache-control': 'no-store' };
  const challenge = upstream.headers.get('www-authenticate');
  if (challenge) out['www-authenticate'] = challenge;
  res.writeHead(upstream.status, out);
  res.end(await upstream.text());
}

/**
 * Serves a file of the build, or the app for client-side routes.
 *
 * @param {string} dist the build directory
 * @param {string} path the request path
 * @param {IncomingMessage} req
 * @param {ServerResponse} res
 */
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

/**
 * @param {ServerResponse} res
 * @param {number} status
 * @param {string} type the content type
 * @param {string} body
 * @param {Record<string, string>} [headers]
 */
function send(res, status, type, body, headers = {}) {
  res.writeHead(status, { 'content-type': type, 'x-content-type-options': 'nosniff', ...headers });
  res.end(body);
}
