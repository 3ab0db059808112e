#!/usr/bin/env node
// The runtime hop's command line: proves nothing by itself; starts the web server (app + CopilotKit
// runtime, see app.mjs) on 127.0.0.1 and prints ONE JSON line on stdout when it is ready:
//   {"url":"http://127.0.0.1:PORT"}
// Everything else goes to stderr.
//
// Usage: node web/server/index.mjs --agui-url http://127.0.0.1:8080 --issuer http://127.0.0.1:9400
//          [--port 0] [--client-id agui-web] [--scope "openid profile email agui:chat agui:tools"]
//          [--no-silent-renew] [--agents a,b] [--exit-on-stdin-close]
// Environment equivalents: AGUI_URL, AGUI_WEB_OIDC_ISSUER, AGUI_WEB_PORT, AGUI_WEB_CLIENT_ID,
// AGUI_WEB_AGENTS.

import { parseArgs } from 'node:util';

import { createWebServer } from './app.mjs';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.AGUI_WEB_PORT ?? '0' },
    'agui-url': { type: 'string', default: process.env.AGUI_URL },
    issuer: { type: 'string', default: process.env.AGUI_WEB_OIDC_ISSUER },
    'client-id': { type: 'string', default: process.env.AGUI_WEB_CLIENT_ID ?? 'agui-web' },
    scope: { type: 'string', default: 'openid profile email agui:chat agui:tools' },
    'no-silent-renew': { type: 'boolean', default: false },
    agents: { type: 'string', default: process.env.AGUI_WEB_AGENTS ?? '' },
    'exit-on-stdin-close': { type: 'boolean', default: false },
  },
});

const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) fatal(`invalid --port ${values.port}`);
if (!values['agui-url']) fatal('--agui-url (or AGUI_URL) is required');
if (!values.issuer) fatal('--issuer (or AGUI_WEB_OIDC_ISSUER) is required');

const { server } = createWebServer({
  aguiUrl: values['agui-url'],
  oidc: {
    authority: values.issuer,
    clientId: values['client-id'],
    scope: values.scope,
    silentRenew: !values['no-silent-renew'],
  },
  namedAgents: values.agents.split(',').map((s) => s.trim()).filter(Boolean),
  log: (line) => process.stderr.write(`web: ${line}\n`),
});

server.on('error', (error) => fatal(`cannot listen: ${error.message}`));
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${server.address().port}` })}\n`);
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

function fatal(message) {
  process.stderr.write(`web: ${message}\n`);
  process.exit(2);
}
