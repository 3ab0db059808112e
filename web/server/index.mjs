#!/usr/bin/env node
// @ts-check
// The web server's command line: proves nothing by itself; starts the web server (the app, and in
// hop mode CopilotKit's runtime; see app.mjs) on 127.0.0.1 and prints ONE JSON line on stdout when
// it is ready:
//   {"url":"http://127.0.0.1:PORT","mode":"direct"}
// Everything else goes to stderr.
//
// Usage: node web/server/index.mjs --agui-url http://127.0.0.1:8080 --issuer http://127.0.0.1:9400
//          [--mode direct|hop] [--public-agui-url URL] [--port 0] [--client-id agui-web]
//          [--scope "openid profile email agui:chat agui:tools"] [--no-silent-renew]
//          [--agents a,b] [--github-login-url URL] [--exit-on-stdin-close]
// Environment equivalents: AGUI_URL, AGUI_WEB_MODE, AGUI_PUBLIC_URL, AGUI_WEB_OIDC_ISSUER,
// AGUI_WEB_PORT, AGUI_WEB_CLIENT_ID, AGUI_WEB_AGENTS, AGUI_WEB_GITHUB_LOGIN_URL.
// --github-login-url: agui-server's /auth/github/login as the browser reaches it; the app then
// shows "Sign in with GitHub" (agui-server needs [auth.github] with redirect_uri and app_origin).
//
// Direct mode (the default) needs agui-server to allow this server's origin:
// AGUI_CORS_ORIGINS=http://127.0.0.1:PORT (web/scripts/stack.mjs sets it).

import { parseArgs } from 'node:util';

import { createWebServer, MODES } from './app.mjs';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.AGUI_WEB_PORT ?? '0' },
    'agui-url': { type: 'string', default: process.env.AGUI_URL },
    'public-agui-url': { type: 'string', default: process.env.AGUI_PUBLIC_URL },
    mode: { type: 'string', default: process.env.AGUI_WEB_MODE || 'direct' },
    issuer: { type: 'string', default: process.env.AGUI_WEB_OIDC_ISSUER },
    'client-id': { type: 'string', default: process.env.AGUI_WEB_CLIENT_ID ?? 'agui-web' },
    scope: { type: 'string', default: 'openid profile email agui:chat agui:tools' },
    'no-silent-renew': { type: 'boolean', default: false },
    agents: { type: 'string', default: process.env.AGUI_WEB_AGENTS ?? '' },
    'github-login-url': { type: 'string', default: process.env.AGUI_WEB_GITHUB_LOGIN_URL ?? '' },
    'exit-on-stdin-close': { type: 'boolean', default: false },
  },
});

const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) fatal(`invalid --port ${values.port}`);
if (!values['agui-url']) fatal('--agui-url (or AGUI_URL) is required');
if (!values.issuer) fatal('--issuer (or AGUI_WEB_OIDC_ISSUER) is required');
const mode = /** @type {'direct'|'hop'} */ (values.mode);
if (!MODES.includes(mode)) fatal(`invalid --mode ${values.mode} (direct or hop)`);

const { server } = await createWebServer({
  aguiUrl: values['agui-url'],
  publicAguiUrl: values['public-agui-url'] || values['agui-url'],
  mode,
  oidc: {
    authority: values.issuer,
    clientId: values['client-id'],
    scope: values.scope,
    silentRenew: !values['no-silent-renew'],
  },
  github: values['github-login-url'] ? { loginUrl: values['github-login-url'] } : undefined,
  namedAgents: values.agents.split(',').map((s) => s.trim()).filter(Boolean),
  log: (line) => process.stderr.write(`web: ${line}\n`),
});

server.on('error', (error) => fatal(`cannot listen: ${error.message}`));
server.listen(port, '127.0.0.1', () => {
  const address = /** @type {import('node:net').AddressInfo} */ (server.address());
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${address.port}`, mode })}\n`);
});

let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2_000).unref();
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
if (values['exit-on-stdin-close']) {
  process.stdin.on('end', stop);
  process.stdin.on('error', stop);
  process.stdin.resume();
}

/**
 * @param {string} message
 * @returns {never}
 */
function fatal(message) {
  process.stderr.write(`web: ${message}\n`);
  process.exit(2);
}
