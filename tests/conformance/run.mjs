#!/usr/bin/env node
// Entry point of the official-client conformance suite (the Makefile calls it): proves, end to end,
// that agui-server verifies real OIDC tokens (a certified oidc-provider on loopback), streams the
// scripted model's contract to both official AG-UI clients (1.0.0 and the 0.0.59 CopilotKit ships),
// serves the protobuf binding, accepts a token signed with a rotated-in key without a restart, and
// never writes the bearer token to its logs.
//
// It runs the IdP's self-test (tests/idp/selftest.mjs), starts the IdP (tests/idp/server.mjs) and
// `agui-server serve` (AGUI_SERVER_BIN, default target/debug/agui-server), mints a
// client_credentials token, runs v1/suite.mjs, v0/suite.mjs and v1/rotation.mjs as child processes, relays their `ok - ` / `not ok - ` lines, stops every process
// it started (also on failure and SIGINT) and ends with `conformance: N passed, M failed`.
// Before the server starts it checks the sequence guard against both clients' verifyEvents
// (v1/guard.mjs, v0/guard.mjs on sequences printed by the Rust example guard_sequences).
// For the OpenAI-provider scenarios it also runs a mock OpenAI-compatible server (mock-openai.mjs,
// in this process) and a second agui-server with AGUI_MODEL=openai pointed at it. For the
// credentials beyond JWTs (v1/credentials.mjs) it runs the GitHub stand-in binary
// (AGUI_GITHUB_STANDIN_BIN, default target/debug/github-standin) and a third agui-server that
// introspects the IdP's opaque tokens and checks GitHub tokens against the stand-in.

import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { decodeJwt, INTROSPECTOR, OPAQUE_RESOURCE, requestToken, TEST_CLIENTS } from '../idp/client.mjs';
import { DEFAULT_SETTINGS } from '../idp/config.mjs';
import { startMockOpenAi } from './mock-openai.mjs';
import { OPENAI_AGENT } from './openai-scenarios.mjs';
import { roleClientSettings } from './scenarios.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '../..');
const serverBin = resolve(repoRoot, process.env.AGUI_SERVER_BIN ?? 'target/debug/agui-server');
const standinBin = resolve(repoRoot, process.env.AGUI_GITHUB_STANDIN_BIN ?? 'target/debug/github-standin');
// The Rust example that prints guard-accepted event sequences (server/protocol/examples).
const guardSequencesBin = resolve(repoRoot, process.env.AGUI_GUARD_SEQUENCES_BIN ?? 'target/debug/examples/guard_sequences');
const GUARD_SEQUENCES = 300;
const LISTENING = /listening on (http:\/\/127\.0\.0\.1:\d+)/;
const ANSI = /\x1b\[[0-9;]*m/g;
const STARTUP_DEADLINE_MS = 60_000;
const LOG_TAIL_LINES = 60;

const children = new Set();
const scratchDirs = new Set();
const counts = { passed: 0, failed: 0 };

function pass(name) {
  counts.passed += 1;
  process.stdout.write(`ok - ${name}\n`);
}

function fail(name, reason) {
  counts.failed += 1;
  process.stdout.write(`not ok - ${name}: ${String(reason).replace(/\s+/g, ' ')}\n`);
}

/** Spawns a child we own; it is killed when this process exits for any reason. */
function start(command, args, options) {
  const child = spawn(command, args, options);
  children.add(child);
  child.once('exit', () => children.delete(child));
  child.logs = [];
  return child;
}

/** Keeps a child's output lines (for the failure report) and resolves on the first `match`. */
function watchOutput(child, streams, match) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ready line within ${STARTUP_DEADLINE_MS} ms`)), STARTUP_DEADLINE_MS);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`exited before ready (code ${code}, signal ${signal})`));
    });
    for (const stream of streams) {
      createInterface({ input: stream }).on('line', (line) => {
        child.logs.push(line);
        const found = match(line);
        if (found) {
          clearTimeout(timer);
          resolve(found);
        }
      });
    }
  });
}

async function stop(child, signal = 'SIGTERM') {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

function killAllNow() {
  for (const child of children) child.kill('SIGKILL');
  for (const dir of scratchDirs) rmSync(dir, { recursive: true, force: true });
}
process.on('exit', killAllNow);
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    killAllNow();
    process.stdout.write(`conformance: ${counts.passed} passed, ${counts.failed + 1} failed (interrupted by ${signal})\n`);
    process.exit(130);
  });
}

function printTail(title, child) {
  process.stderr.write(`--- last ${LOG_TAIL_LINES} lines of ${title} ---\n${child.logs.slice(-LOG_TAIL_LINES).join('\n')}\n`);
}

/** Runs one suite file, relaying and counting its result lines. */
async function runSuite(file, env) {
  const child = start(process.execPath, [join(here, file)], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let reported = 0;
  createInterface({ input: child.stdout }).on('line', (line) => {
    if (line.startsWith('ok - ')) {
      reported += 1;
      counts.passed += 1;
    } else if (line.startsWith('not ok - ')) {
      reported += 1;
      counts.failed += 1;
    }
    process.stdout.write(`${line}\n`);
  });
  createInterface({ input: child.stderr }).on('line', (line) => process.stderr.write(`[${file}] ${line}\n`));
  const code = await new Promise((resolve) => child.once('exit', (c, s) => resolve(c ?? s)));
  if (code !== 0 && reported === 0) fail(file, `exited with ${code} before reporting any test`);
  else if (code !== 0 && !Number.isInteger(code)) fail(file, `killed by ${code}`);
  return code;
}

/**
 * Starts `agui-server serve` in a fresh scratch directory (its default SQLite file lands there)
 * with `files` written into it, and waits for its `listening on` line.
 *
 * @returns {Promise<{server: object, base: string, scratch: string}|undefined>} undefined (and a
 *   failure reported) when it did not come up
 */
async function startAgui(title, issuer, extraEnv, files = {}) {
  const scratch = mkdtempSync(join(tmpdir(), 'agui-conformance-'));
  scratchDirs.add(scratch);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(scratch, name), text);
  const server = start(serverBin, ['serve'], {
    cwd: scratch,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      AGUI_LISTEN: '127.0.0.1:0',
      AGUI_OIDC_ISSUER: issuer,
      AGUI_OIDC_AUDIENCE: 'agui-server',
      AGUI_LOG: 'info',
      // One client_credentials subject runs every scenario back to back: lift its per-user
      // limits (the limits have their own tests in server/app/tests).
      AGUI_RUNS_PER_MINUTE: '0',
      AGUI_MAX_STREAMS_PER_USER: '0',
      ...extraEnv,
    },
  });
  try {
    // Colour codes (if the log format adds any) are stripped before matching.
    const base = await watchOutput(server, [server.stdout, server.stderr], (line) => line.replace(ANSI, '').match(LISTENING)?.[1]);
    return { server, base, scratch };
  } catch (error) {
    fail(`${title} starts and logs its address`, error.message);
    printTail(title, server);
    await stop(server);
    rmSync(scratch, { recursive: true, force: true });
    return undefined;
  }
}

/** The agui-server config of the OpenAI-backed instance: its default agent's prompt and tools. */
function openAiAgentToml() {
  // JSON string literals are valid TOML basic strings for this ASCII text.
  return [
    '[agents.default]',
    `system_prompt = ${JSON.stringify(OPENAI_AGENT.systemPrompt)}`,
    `tools = ${JSON.stringify(OPENAI_AGENT.backendTools)}`,
    '',
  ].join('\n');
}

/**
 * The sequence guard against both official clients' rules: the Rust example prints
 * GUARD_SEQUENCES guard-accepted random sequences (fixed seed) in their 1.0 and 0.0.x forms;
 * v1/guard.mjs and v0/guard.mjs run each through that client's schemas, transformChunks and
 * verifyEvents. No server needed.
 */
async function runGuardSuites() {
  if (!existsSync(guardSequencesBin)) {
    fail('guard sequences binary exists', `${guardSequencesBin} not found (build it: cargo build -p agui-protocol --examples)`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'agui-conformance-guard-'));
  scratchDirs.add(dir);
  const file = join(dir, 'sequences.json');
  try {
    const output = execFileSync(guardSequencesBin, ['--count', String(GUARD_SEQUENCES)], { maxBuffer: 256 * 1024 * 1024 });
    writeFileSync(file, output);
  } catch (error) {
    fail('guard sequences are generated', error.message);
    return;
  }
  for (const suite of ['v1/guard.mjs', 'v0/guard.mjs']) await runSuite(suite, { ...process.env, AGUI_GUARD_SEQUENCES: file });
  rmSync(dir, { recursive: true, force: true });
}

async function main() {
  // 0. The IdP on its own (its own instances; no agui-server needed), and the sequence guard
  //    against the clients' rules.
  await runSuite('../idp/selftest.mjs', process.env);
  await runGuardSuites();

  // 1. The IdP, with the built-in clients plus the suite's role clients (an admin and its twin,
  //    for the role-gated tools; `clients` in a settings file replaces the default list).
  const idpDir = mkdtempSync(join(tmpdir(), 'agui-conformance-idp-'));
  scratchDirs.add(idpDir);
  const idpSettings = join(idpDir, 'idp.json');
  writeFileSync(idpSettings, JSON.stringify({ clients: [...DEFAULT_SETTINGS.clients, ...roleClientSettings()] }));
  const idpArgs = [join(repoRoot, 'tests/idp/server.mjs'), '--port', '0', '--config', idpSettings, '--exit-on-stdin-close'];
  const idp = start(process.execPath, idpArgs, {
    cwd: repoRoot,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let issuer;
  try {
    ({ issuer } = await watchOutput(idp, [idp.stdout], (line) => (line.startsWith('{') ? JSON.parse(line) : undefined)));
    createInterface({ input: idp.stderr }).on('line', (line) => idp.logs.push(line));
  } catch (error) {
    fail('test IdP starts', error.message);
    printTail('the IdP', idp);
    return;
  }

  // 2. agui-server with the scripted model, and a second one with the OpenAI provider pointed at
  //    the mock (same IdP and audience).
  if (!existsSync(serverBin)) {
    fail('agui-server binary exists', `${serverBin} not found (build it: cargo build -p agui-server)`);
    return;
  }
  const scripted = await startAgui('agui-server', issuer, { AGUI_MODEL: 'scripted' });
  if (!scripted) return;
  const { server, base } = scripted;
  const serverPid = server.pid;

  const mock = await startMockOpenAi();
  const openAiKey = `sk-conformance-${randomBytes(12).toString('hex')}`;
  const openai = await startAgui(
    'agui-server (openai, mock model)',
    issuer,
    {
      AGUI_MODEL: 'openai',
      AGUI_CONFIG: 'agui.toml',
      OPENAI_BASE_URL: mock.base,
      OPENAI_API_KEY: openAiKey,
      AGUI_OPENAI_API_KEY_FILE: '',
      AGUI_OPENAI_MODEL: OPENAI_AGENT.model,
      NO_PROXY: '127.0.0.1,localhost',
    },
    { 'agui.toml': openAiAgentToml() },
  );

  try {
    // 3. A token from the IdP, and the suites.
    const { clientId, clientSecret } = TEST_CLIENTS.plain;
    const token = await requestToken({ issuer, clientId, clientSecret, scope: 'agui:chat' });
    const subject = decodeJwt(token).payload.sub;
    const env = {
      ...process.env,
      AGUI_URL: `${base}/chat`,
      AGUI_TOKEN: token,
      AGUI_EXPECT_SUBJECT: subject,
      AGUI_IDP_URL: issuer,
      AGUI_CLIENT_ID: clientId,
      AGUI_CLIENT_SECRET: clientSecret,
      // Empty when the OpenAI-backed server did not start: the suites then report its scenarios failed.
      AGUI_OPENAI_URL: openai ? `${openai.base}/chat` : '',
      AGUI_MOCK_OPENAI_URL: mock.url,
      AGUI_MOCK_OPENAI_KEY: openAiKey,
    };
    const failedBefore = counts.failed;
    for (const file of ['v1/suite.mjs', 'v0/suite.mjs', 'v1/rotation.mjs']) await runSuite(file, env);

    // 4. Checks on the server processes themselves.
    if (server.pid === serverPid && server.exitCode === null && server.signalCode === null) {
      pass('rotation: one agui-server process served every suite (no restart)');
    } else {
      fail('rotation: one agui-server process served every suite (no restart)', `exit ${server.exitCode ?? server.signalCode}`);
    }
    const leaked = server.logs.filter((line) => line.includes(token));
    if (leaked.length === 0 && server.logs.length > 0) pass('agui-server logs never contain the bearer token');
    else fail('agui-server logs never contain the bearer token', `${leaked.length} of ${server.logs.length} lines`);
    if (openai) {
      const name = 'openai: agui-server (openai) logs never contain the bearer token or the OpenAI API key';
      const secretLines = openai.server.logs.filter((line) => line.includes(token) || line.includes(openAiKey));
      // Positive control: the log is there, and it did record the mock's failures (the retried 429).
      const sawRetry = openai.server.logs.some((line) => line.includes('retrying'));
      if (secretLines.length === 0 && openai.server.logs.length > 0 && sawRetry) pass(name);
      else fail(name, `${secretLines.length} of ${openai.server.logs.length} lines hold a secret; retry logged: ${sawRetry}`);
    }

    if (counts.failed > failedBefore) {
      printTail('agui-server', server);
      if (openai) printTail('agui-server (openai, mock model)', openai.server);
    }

    // 5. Credentials beyond JWTs: a third agui-server with introspection and GitHub.
    await credentials(issuer);
  } catch (error) {
    fail('conformance harness', error.stack ?? error.message);
    printTail('agui-server', server);
    if (openai) printTail('agui-server (openai, mock model)', openai.server);
  } finally {
    await stop(server);
    if (openai) await stop(openai.server);
    await mock.close();
    rmSync(scripted.scratch, { recursive: true, force: true });
    if (openai) rmSync(openai.scratch, { recursive: true, force: true });
  }
}

/** The agui-server config of the credentials instance: the IdP as an introspection issuer. */
function introspectionToml(issuer) {
  return [
    '[[auth.introspection]]',
    `issuer = ${JSON.stringify(issuer)}`,
    `client_id = ${JSON.stringify(INTROSPECTOR.clientId)}`,
    `client_secret = ${JSON.stringify(INTROSPECTOR.clientSecret)}`,
    'audiences = ["agui-server"]',
    // oidc-provider's client_credentials answers carry client_id and no sub.
    'subject_from_client_id = true',
    // So the revocation scenario sees the refusal after a second, not a minute.
    'cache_max_secs = 1',
    '',
  ].join('\n');
}

/**
 * Starts the GitHub stand-in binary and an agui-server trusting the IdP by JWKS and by
 * introspection and the stand-in as its GitHub, runs v1/credentials.mjs against it, and checks
 * that server's log holds neither the opaque nor the GitHub token.
 */
async function credentials(issuer) {
  if (!existsSync(standinBin)) {
    fail('github-standin binary exists', `${standinBin} not found (build it: cargo build -p agui-e2e --bin github-standin)`);
    return;
  }
  const standin = start(standinBin, ['--port', '0', '--exit-on-stdin-close'], { cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe'] });
  let gh;
  try {
    gh = await watchOutput(standin, [standin.stdout], (line) => (line.startsWith('{') ? JSON.parse(line) : undefined));
    createInterface({ input: standin.stderr }).on('line', (line) => standin.logs.push(line));
  } catch (error) {
    fail('GitHub stand-in starts', error.message);
    printTail('the GitHub stand-in', standin);
    return;
  }
  const agui = await startAgui(
    'agui-server (introspection, GitHub stand-in)',
    issuer,
    {
      AGUI_MODEL: 'scripted',
      AGUI_CONFIG: 'agui.toml',
      AGUI_GITHUB_CLIENT_ID: gh.client_id,
      AGUI_GITHUB_CLIENT_SECRET: gh.client_secret,
      AGUI_GITHUB_API_URL: gh.api_url,
      AGUI_GITHUB_WEB_URL: gh.url,
      NO_PROXY: '127.0.0.1,localhost',
    },
    { 'agui.toml': introspectionToml(issuer) },
  );
  if (!agui) {
    await stop(standin);
    return;
  }
  try {
    const { clientId, clientSecret } = TEST_CLIENTS.plain;
    const opaque = await requestToken({ issuer, clientId, clientSecret, resource: OPAQUE_RESOURCE, scope: 'agui:chat' });
    const minted = await fetch(`${gh.url}/__standin/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ login: 'octocat', client_id: gh.client_id }),
    });
    const { token: github } = await minted.json();
    const failedBefore = counts.failed;
    await runSuite('v1/credentials.mjs', {
      ...process.env,
      AGUI_URL: `${agui.base}/chat`,
      AGUI_IDP_URL: issuer,
      AGUI_CLIENT_ID: clientId,
      AGUI_CLIENT_SECRET: clientSecret,
      AGUI_OPAQUE_TOKEN: opaque,
      AGUI_GITHUB_TOKEN: github,
      AGUI_GITHUB_STANDIN_URL: gh.url,
    });
    const name = 'credentials: agui-server logs never contain the opaque or the GitHub token';
    const leaked = agui.server.logs.filter((line) => line.includes(opaque) || line.includes(github));
    if (leaked.length === 0 && agui.server.logs.length > 0) pass(name);
    else fail(name, `${leaked.length} of ${agui.server.logs.length} lines`);
    if (counts.failed > failedBefore) {
      printTail('agui-server (introspection, GitHub stand-in)', agui.server);
      printTail('the GitHub stand-in', standin);
    }
  } finally {
    await stop(agui.server);
    rmSync(agui.scratch, { recursive: true, force: true });
    await stop(standin);
  }
}

try {
  await main();
} catch (error) {
  fail('conformance harness', error.stack ?? error.message);
} finally {
  await Promise.all([...children].map((child) => stop(child)));
}
process.stdout.write(`conformance: ${counts.passed} passed, ${counts.failed} failed\n`);
process.exitCode = counts.failed === 0 && counts.passed > 0 ? 0 : 1;
