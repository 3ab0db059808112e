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
// AGUI_OPENAI_MODEL, else OPENAI_MODEL, else gpt-4o-mini), AGUI_SERVER_BIN.

import { DEMO_ACCOUNTS } from '../../tests/idp/demo.mjs';
import { ensureBuilt } from './build.mjs';
import { modelEnv, startStack, webMode } from './stack.mjs';

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
    webPort: port('AGUI_WEB_PORT', 5173),
    idpPort: port('AGUI_IDP_PORT', 0),
    aguiPort: port('AGUI_PORT', 0),
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
console.log(`
  agui-server CopilotKit demo is running (model: ${model})

    open       ${stack.webUrl}

    IdP        ${stack.issuer}
    agui-server ${stack.aguiUrl}
    mode       ${how}
               (AGUI_WEB_MODE=${stack.mode === 'direct' ? 'hop' : 'direct'} make run for the other one)

  demo accounts:
${accounts}

  Try: "Who am I?", "List my documents", "Delete document 2" (admin only), "Change the accent colour to teal".
  Ctrl-C stops everything.
`);
