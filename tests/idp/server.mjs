#!/usr/bin/env node
// The test IdP's command line: proves nothing by itself; starts a real OpenID provider on
// 127.0.0.1 and prints ONE JSON line on stdout when it is ready to serve:
//   {"issuer":"http://127.0.0.1:PORT","port":PORT}
// Everything else (oidc-provider notices, our logs) goes to stderr, so stdout stays machine-readable.
//
// Usage: node tests/idp/server.mjs [--port 0] [--config settings.json] [--audience agui-server]
//                                  [--exit-on-stdin-close]
// `--exit-on-stdin-close` makes the IdP exit when its parent's pipe closes, so a harness that dies
// (even by SIGKILL) never leaves an orphan IdP behind.

import { parseArgs } from 'node:util';

import { loadSettings } from './config.mjs';
import { startIdp } from './idp.mjs';

// oidc-provider prints notices with console.info, which writes to stdout: keep stdout for the
// ready line only.
console.info = (...args) => console.error(...args);
console.log = (...args) => console.error(...args);

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    config: { type: 'string' },
    audience: { type: 'string' },
    'exit-on-stdin-close': { type: 'boolean', default: false },
  },
});

const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`idp: invalid --port ${values.port}`);
  process.exit(2);
}

let idp;
try {
  const settings = loadSettings(values.config, { audience: values.audience });
  idp = await startIdp({ port, settings });
} catch (error) {
  console.error(`idp: failed to start: ${error.message}`);
  process.exit(1);
}

process.stdout.write(`${JSON.stringify({ issuer: idp.issuer, port: idp.port })}\n`);

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  await idp.close();
  process.exit(0);
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
if (values['exit-on-stdin-close']) {
  process.stdin.on('end', stop);
  process.stdin.on('error', stop);
  process.stdin.resume();
}
