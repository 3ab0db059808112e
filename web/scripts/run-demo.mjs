#!/usr/bin/env node
// @ts-check
// `make run`: the whole demo on loopback. Builds the app if needed, starts the OpenID provider,
// agui-server and the web server (scripts/stack.mjs), prints the URL and the demo accounts, and
// stops all three on Ctrl-C (SIGINT/SIGTERM), leaving no process behind.
//
// Environment: AGUI_WEB_MODE (direct, the default: the app talks to agui-server's /copilotkit,
// with AGUI_CORS_ORIGINS set for the app's origin; hop: through CopilotKit's Node runtime in the
// web server), AGUI_WEB_PORT (default 5173; 0 = any), AGUI_IDP_PORT and AGUI_PORT (default any),
// OPENAI_API_KEY / OPENAI_BASE_URL (a real model instead of the scripted one; its name from
// AGUI_OPENAI_MODEL, else OPENAI_MODEL, else gpt-4o-mini), AGUI_SERVER_BIN, AGUI_DEMO_VERBOSE
// (any value: the three processes' logs on stderr, colour codes removed).
// "Sign in with GitHub": AGUI_GITHUB_CLIENT_ID and AGUI_GITHUB_CLIENT_SECRET (or …_FILE) of a
// GitHub OAuth app whose callback is agui-server's /auth/github/callback; agui-server then
// listens on AGUI_PORT, default 8080, so that the callback URL stays the registered one, and the
// other AGUI_GITHUB_* settings (AGUI_GITHUB_ALLOWED_USERS, …) apply. Without them the app shows
// only the OpenID sign-in, and this prints how to register the app.
// A port that is taken stops the demo before anything starts, naming the setting that moves it.

import { createServer } from 'node:net';

import { DEMO_ACCOUNTS } from '../../tests/idp/demo.mjs';
import { ensureBuilt } from './build.mjs';
import { githubCallbackUrl, githubConfigured, modelEnv, startStack, webMode } from './stack.mjs';

/** agui-server's port when GitHub sign-in is on and AGUI_PORT is not set. */
const GITHUB_AGUI_PORT = 8080;

/**
 * @param {string} name the environment variable
 * @param {number} fallback its default
 * @returns {number}
 */
const port = (name, fallback) => {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value < 0 || value > 65535) {
    console.error(`run-demo: invalid ${name}`);
    process.exit(2);
  }
  return value;
};

/**
 * Whether something already listens on 127.0.0.1:`port`.
 *
 * @param {number} port
 * @returns {Promise<boolean>}
 */
function portTaken(port) {
  return new Promise((resolveTaken) => {
    const probe = createServer();
    probe.once('error', (/** @type {NodeJS.ErrnoException} */ error) => resolveTaken(error.code === 'EADDRINUSE' || error.code === 'EACCES'));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolveTaken(false)));
  });
}

const github = githubConfigured(process.env);
const ports = {
  webPort: port('AGUI_WEB_PORT', 5173),
  idpPort: port('AGUI_IDP_PORT', 0),
  aguiPort: port('AGUI_PORT', github ? GITHUB_AGUI_PORT : 0),
};
for (const [value, name, what] of /** @type {const} */ ([
  [ports.webPort, 'AGUI_WEB_PORT', 'the app'],
  [ports.idpPort, 'AGUI_IDP_PORT', 'the OpenID provider'],
  [ports.aguiPort, 'AGUI_PORT', 'agui-server'],
])) {
  if (value !== 0 && (await portTaken(value))) {
    const more = name === 'AGUI_PORT' && github ? ` (and register ${githubCallbackUrl(value)} with that port as the GitHub app's callback)` : '';
    console.error(`run-demo: port ${value} (${what}) is taken: stop what uses it, or set ${name} to another port (0 = any free port)${more}`);
    process.exit(2);
  }
}

/** @type {import('./stack.mjs').Stack | undefined} */
let stack;
let stopping = false;
/** @param {number} code the exit status */
async function shutdown(code) {
  if (stopping) return;
  stopping = true;
  console.error('\nrun-demo: stopping the IdP, agui-server and the web server…');
  await stack?.stop();
  process.exit(code);
}
process.on('SIGINT', () => void shutdown(0));
process.on('SIGTERM', () => void shutdown(0));

try {
  ensureBuilt();
  stack = await startStack({
    mode: webMode(process.env),
    ...ports,
    github: github ? Object.fromEntries(Object.entries(process.env).filter(([k, v]) => k.startsWith('AGUI_GITHUB_') && v !== undefined).map(([k, v]) => [k, String(v)])) : undefined,
    log: process.env.AGUI_DEMO_VERBOSE ? (line) => console.error(line) : undefined,
  });
} catch (error) {
  console.error(`run-demo: ${error instanceof Error ? error.message : error}`);
  await shutdown(1);
  process.exit(1);
}

const { AGUI_MODEL: kind, AGUI_OPENAI_MODEL: openaiModel } = modelEnv(process.env);
const model = kind === 'openai' ? `${openaiModel}, OpenAI-compatible (${process.env.OPENAI_BASE_URL || 'https://api.openai.com/v1'})` : 'scripted';
const how =
  stack.mode === 'direct'
    ? `direct: the app talks to agui-server's ${stack.runtimeUrl} (CORS allows ${stack.webUrl})`
    : `hop: the app talks to CopilotKit's Node runtime at ${stack.runtimeUrl}, which calls agui-server's /chat`;
const accounts = Object.entries(DEMO_ACCOUNTS)
  .map(([login, a]) => `    ${login.padEnd(6)} password ${a.password.padEnd(16)} ${a.name}, roles: ${a.roles.join(', ')}`)
  .join('\n');
const githubHelp = stack.github
  ? `  Sign in with GitHub: on (callback ${stack.github.callbackUrl}; ${
      process.env.AGUI_GITHUB_ALLOWED_USERS || process.env.AGUI_GITHUB_ALLOWED_ORGS
        ? 'allowlist from AGUI_GITHUB_ALLOWED_USERS / AGUI_GITHUB_ALLOWED_ORGS'
        : 'no allowlist: every GitHub user who authorizes the app gets in; set AGUI_GITHUB_ALLOWED_USERS=<logins>'
    })`
  : `  Sign in with GitHub: off. To turn it on, register an OAuth app at https://github.com/settings/applications/new
    with Homepage URL ${stack.webUrl} and Authorization callback URL ${githubCallbackUrl(ports.aguiPort || GITHUB_AGUI_PORT)},
    then run:  AGUI_GITHUB_CLIENT_ID=<client id> AGUI_GITHUB_CLIENT_SECRET=<secret> AGUI_GITHUB_ALLOWED_USERS=<your login> make run`;
console.log(`
  agui-server CopilotKit demo is running (model: ${model})

    open       ${stack.webUrl}

    IdP        ${stack.issuer}
    agui-server ${stack.aguiUrl}
    mode       ${how}
               (AGUI_WEB_MODE=${stack.mode === 'direct' ? 'hop' : 'direct'} make run for the other one)

  demo accounts:
${accounts}

${githubHelp}

  Try: "Who am I?", "List my documents", "Delete document 2" (admin only), "Change the accent colour to teal", "Set my theme to dark", "What can you do?".
  Settings: AGUI_WEB_PORT, AGUI_IDP_PORT, AGUI_PORT move the ports; AGUI_DEMO_VERBOSE=1 shows the logs.
  Ctrl-C stops everything.
`);
