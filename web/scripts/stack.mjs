// @ts-check
// Starts and stops the demo stack: proves nothing by itself; the three processes `make run`
// (run-demo.mjs) and the tests (web/e2e) need, all on 127.0.0.1:
//   1. the OpenID provider (tests/idp/server.mjs) with the demo settings (tests/idp/demo.mjs),
//   2. agui-server (`target/debug/agui-server serve`) trusting that issuer,
//   3. the web server (web/server/index.mjs): the built app, in one of two modes:
//      direct (the default): the app talks to agui-server's own `/copilotkit`, so agui-server
//        gets AGUI_CORS_ORIGINS=<the app's origin>;
//      hop: the web server also runs CopilotKit's Node runtime in front of agui-server's /chat.
//      AGUI_WEB_MODE=hop (or the `mode` option) picks the hop.
// The IdP must know the app's redirect URI before it starts, so the web port is chosen first.
// Every child is killed when the stack stops or this process exits; the IdP and the web server
// also exit by themselves when our stdin pipe to them closes (even if we are SIGKILLed).

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { demoSettings } from '../../tests/idp/demo.mjs';

const here = dirname(fileURLToPath(import.meta.url));
/** The web/ directory. */
export const WEB_DIR = resolve(here, '..');
/** The repository root. */
export const REPO_ROOT = resolve(WEB_DIR, '..');
const STARTUP_DEADLINE_MS = 60_000;
const LISTENING = /listening on (http:\/\/127\.0\.0\.1:\d+)/;
const ANSI = /\x1b\[[0-9;]*m/g;
/** The model a real (OpenAI-compatible) provider uses when neither AGUI_OPENAI_MODEL nor OPENAI_MODEL is set. */
export const DEFAULT_OPENAI_MODEL = 'gpt-4o-mini';

/**
 * The model settings agui-server gets from this environment: the scripted model, or, when
 * OPENAI_API_KEY or OPENAI_BASE_URL is set, the OpenAI-compatible provider with AGUI_OPENAI_MODEL
 * (agui-server requires one), taken from AGUI_OPENAI_MODEL, else OPENAI_MODEL, else
 * {@link DEFAULT_OPENAI_MODEL}.
 *
 * @param {Record<string, string|undefined>} env usually process.env
 * @returns {{AGUI_MODEL: string, AGUI_OPENAI_MODEL?: string}}
 */
export function modelEnv(env) {
  if (!env.OPENAI_API_KEY && !env.OPENAI_BASE_URL) return { AGUI_MODEL: 'scripted' };
  const model = [env.AGUI_OPENAI_MODEL, env.OPENAI_MODEL].map((m) => m?.trim()).find(Boolean) ?? DEFAULT_OPENAI_MODEL;
  return { AGUI_MODEL: 'openai', AGUI_OPENAI_MODEL: model };
}

/**
 * The web mode this environment asks for: `AGUI_WEB_MODE` (`direct` or `hop`), else `direct`.
 *
 * @param {Record<string, string|undefined>} env usually process.env
 * @returns {'direct'|'hop'}
 */
export function webMode(env) {
  const mode = (env.AGUI_WEB_MODE ?? '').trim() || 'direct';
  if (mode !== 'direct' && mode !== 'hop') throw new Error(`AGUI_WEB_MODE must be direct or hop, not ${JSON.stringify(mode)}`);
  return mode;
}

/**
 * Whether this environment configures a GitHub app for "Sign in with GitHub": a client id and
 * its secret (`AGUI_GITHUB_CLIENT_ID` and `AGUI_GITHUB_CLIENT_SECRET` or `…_FILE`, the settings
 * agui-server reads).
 *
 * @param {Record<string, string|undefined>} env usually process.env
 * @returns {boolean}
 */
export function githubConfigured(env) {
  return Boolean(env.AGUI_GITHUB_CLIENT_ID?.trim() && (env.AGUI_GITHUB_CLIENT_SECRET || env.AGUI_GITHUB_CLIENT_SECRET_FILE));
}

/**
 * agui-server's GitHub callback at `port` on loopback (what the GitHub app must have registered).
 *
 * @param {number} port
 * @returns {string}
 */
export function githubCallbackUrl(port) {
  return `http://127.0.0.1:${port}/auth/github/callback`;
}

/**
 * A started stack.
 *
 * @typedef {object} Stack
 * @property {'direct'|'hop'} mode how the app reaches agui-server
 * @property {string} issuer the IdP's issuer URL
 * @property {string} aguiUrl agui-server's base URL
 * @property {string} webUrl the app's origin
 * @property {string} runtimeUrl the app's CopilotKit `runtimeUrl` (agui-server's `/copilotkit`, or the hop's)
 * @property {string} databaseUrl agui-server's store
 * @property {string} serverBin the agui-server binary
 * @property {Record<string, string|undefined>} aguiEnv agui-server's AGUI_* environment
 * @property {{loginUrl: string, callbackUrl: string}|undefined} github "Sign in with GitHub", when on
 * @property {() => string[]} logs the children's last output lines
 * @property {(env: Record<string, string>) => Promise<void>} restartAgui restarts agui-server on the same address and store
 * @property {() => Promise<void>} stop stops every process
 */

/**
 * Asks the OS for a free loopback port (bound and released at once; the IdP needs the app's
 * origin before the web server listens).
 *
 * @returns {Promise<number>}
 */
export function freePort() {
  return new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {import('node:net').AddressInfo} */ (probe.address());
      probe.close(() => resolvePort(port));
    });
  });
}

/**
 * Starts the stack.
 *
 * @param {object} [options]
 * @param {'direct'|'hop'} [options.mode] how the app reaches agui-server (default AGUI_WEB_MODE, else direct)
 * @param {number} [options.webPort] 0 = any free port
 * @param {number} [options.idpPort] 0 = any free port
 * @param {number} [options.aguiPort] 0 = any free port
 * @param {number} [options.accessTokenTTL] access-token lifetime in seconds (default 600)
 * @param {number} [options.leewaySecs] agui-server's clock leeway (AGUI_LEEWAY_SECS)
 * @param {boolean} [options.acceptBodyToken] false sets AGUI_ACCEPT_BODY_TOKEN=false
 * @param {boolean} [options.silentRenew] the app's automatic silent renew (default true)
 * @param {Record<string,string>} [options.aguiEnv] extra agui-server environment
 * @param {string} [options.aguiConfigToml] an agui-server TOML file's content (AGUI_CONFIG), e.g.
 *   `[agents.default]` access rules
 * @param {string[]} [options.namedAgents] agents the web server registers besides `default`
 * @param {Record<string,string>} [options.github] "Sign in with GitHub": agui-server's
 *   `AGUI_GITHUB_*` settings (client id and secret at least; pass those of this environment for
 *   `make run`). The stack adds `AGUI_GITHUB_REDIRECT_URI` (agui-server's callback, unless given;
 *   agui-server then listens on that URI's port) and `AGUI_GITHUB_APP_ORIGIN` (the app), and
 *   tells the app where the login is, which shows its button
 * @param {(line: string) => void} [options.log] where the children's output goes (default: kept only)
 * @returns {Promise<Stack>}
 */
export async function startStack(options = {}) {
  const {
    mode = webMode(process.env),
    webPort = 0,
    idpPort = 0,
    aguiPort = 0,
    accessTokenTTL = 600,
    leewaySecs,
    acceptBodyToken,
    silentRenew = true,
    aguiEnv = {},
    aguiConfigToml,
    namedAgents = [],
    github,
    log,
  } = options;
  const serverBin = resolve(REPO_ROOT, process.env.AGUI_SERVER_BIN ?? 'target/debug/agui-server');
  if (!existsSync(serverBin)) throw new Error(`${serverBin} is missing: run \`cargo build -p agui-server\` first`);
  if (!existsSync(join(REPO_ROOT, 'tests/idp/node_modules/oidc-provider'))) {
    throw new Error('tests/idp has no node_modules: run `make deps` (or `npm ci --prefix tests/idp`) first');
  }

  /** @type {ChildProcessWithoutNullStreams[]} */
  const children = [];
  /** @type {string[]} */
  const lines = [];
  const scratch = mkdtempSync(join(tmpdir(), 'agui-web-'));
  /** @type {(name: string) => (line: string) => void} */
  const record = (name) => (line) => {
    const clean = `${name}: ${line.replace(ANSI, '')}`;
    lines.push(clean);
    if (lines.length > 400) lines.shift();
    log?.(clean);
  };

  const stop = async () => {
    await Promise.all(children.map((child) => stopChild(child)));
    rmSync(scratch, { recursive: true, force: true });
  };
  const onExit = () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.once('exit', onExit);

  try {
    const appPort = webPort || (await freePort());
    const appOrigin = `http://127.0.0.1:${appPort}`;
    const settingsFile = join(scratch, 'idp-settings.json');
    writeFileSync(settingsFile, JSON.stringify(demoSettings({ appOrigin, accessTokenTTL })));

    const idp = launch(children, 'node', [join(REPO_ROOT, 'tests/idp/server.mjs'), '--port', String(idpPort), '--config', settingsFile, '--exit-on-stdin-close']);
    const { issuer } = await readyLine(idp, record('idp'), (line) => {
      if (!line.startsWith('{')) return null;
      const parsed = JSON.parse(line);
      return parsed.issuer ? parsed : null;
    });

    // GitHub must redirect to a registered callback, so agui-server's port is known up front.
    let aguiListenPort = aguiPort;
    /** @type {Record<string, string>} */
    let githubEnv = {};
    /** @type {{loginUrl: string, callbackUrl: string}|undefined} */
    let githubLogin;
    if (github) {
      const given = github.AGUI_GITHUB_REDIRECT_URI ? new URL(github.AGUI_GITHUB_REDIRECT_URI) : undefined;
      if (!aguiListenPort) aguiListenPort = given?.port ? Number(given.port) : await freePort();
      const callbackUrl = given?.href ?? githubCallbackUrl(aguiListenPort);
      githubEnv = { ...github, AGUI_GITHUB_REDIRECT_URI: callbackUrl, AGUI_GITHUB_APP_ORIGIN: appOrigin };
      githubLogin = { loginUrl: new URL('/auth/github/login', callbackUrl).href, callbackUrl };
    }

    /** @type {Record<string, string|undefined>} */
    const env = {
      ...process.env,
      // Direct mode: the app (its own origin) calls agui-server from the browser.
      ...(mode === 'direct' ? { AGUI_CORS_ORIGINS: appOrigin } : {}),
      AGUI_LISTEN: `127.0.0.1:${aguiListenPort}`,
      AGUI_OIDC_ISSUER: issuer,
      AGUI_OIDC_AUDIENCE: 'agui-server',
      ...modelEnv(process.env),
      // The store (threads, runs, audit log) lives with this stack unless one is given.
      AGUI_DATABASE_URL: process.env.AGUI_DATABASE_URL ?? `sqlite://${join(scratch, 'agui.db')}?mode=rwc`,
      ...githubEnv,
      ...aguiEnv,
    };
    if (leewaySecs !== undefined) env.AGUI_LEEWAY_SECS = String(leewaySecs);
    if (acceptBodyToken === false) env.AGUI_ACCEPT_BODY_TOKEN = 'false';
    if (aguiConfigToml !== undefined) {
      env.AGUI_CONFIG = join(scratch, 'agui.toml');
      writeFileSync(env.AGUI_CONFIG, aguiConfigToml);
    }
    let agui = launch(children, serverBin, ['serve', '--exit-on-stdin-close'], { env });
    const aguiUrl = await readyLine(agui, record('agui-server'), (line) => LISTENING.exec(line.replace(ANSI, ''))?.[1]);

    // Stops agui-server and starts it again on the same address and store with `changes` to its
    // environment (tests use it to make agui-server refuse what the hop has already verified).
    /** @param {Record<string, string>} changes */
    const restartAgui = async (changes) => {
      await stopChild(agui);
      children.splice(children.indexOf(agui), 1);
      agui = launch(children, serverBin, ['serve', '--exit-on-stdin-close'], { env: { ...env, ...changes, AGUI_LISTEN: new URL(aguiUrl).host } });
      const again = await readyLine(agui, record('agui-server'), (line) => LISTENING.exec(line.replace(ANSI, ''))?.[1]);
      if (again !== aguiUrl) throw new Error(`agui-server came back on ${again}, not ${aguiUrl}`);
    };

    const webArgs = [join(WEB_DIR, 'server/index.mjs'), '--mode', mode, '--port', String(appPort), '--agui-url', aguiUrl, '--issuer', issuer, '--exit-on-stdin-close'];
    if (!silentRenew) webArgs.push('--no-silent-renew');
    if (namedAgents.length > 0) webArgs.push('--agents', namedAgents.join(','));
    if (githubLogin) webArgs.push('--github-login-url', githubLogin.loginUrl);
    const web = launch(children, 'node', webArgs);
    const { url: webUrl } = await readyLine(web, record('web'), (line) => {
      if (!line.startsWith('{')) return null;
      const parsed = JSON.parse(line);
      return parsed.url ? parsed : null;
    });

    const aguiEnvironment = Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith('AGUI_')));
    const runtimeUrl = mode === 'direct' ? `${aguiUrl}/copilotkit` : `${webUrl}/api/copilotkit`;
    return { mode, issuer, aguiUrl, webUrl, runtimeUrl, databaseUrl: String(env.AGUI_DATABASE_URL), serverBin, aguiEnv: aguiEnvironment, github: githubLogin, logs: () => [...lines], restartAgui, stop };
  } catch (error) {
    await stop();
    const tail = lines.slice(-30).join('\n');
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(`${message}${tail ? `\n--- last output ---\n${tail}` : ''}`);
  }
}

/** @typedef {import('node:child_process').ChildProcessWithoutNullStreams} ChildProcessWithoutNullStreams */

/**
 * What the kernel says a process is doing (for a start-up that never finished).
 *
 * @param {number|undefined} pid
 * @returns {string}
 */
function processState(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    const wchan = readFileSync(`/proc/${pid}/wchan`, 'utf8').trim() || '-';
    return `pid ${pid}, state ${state}, waiting in ${wchan}`;
  } catch {
    return `pid ${pid}, no longer running`;
  }
}

/**
 * Spawns a child with piped stdio (its stdin pipe is its lifeline, `--exit-on-stdin-close`).
 *
 * @param {ChildProcessWithoutNullStreams[]} children where the stack keeps its processes
 * @param {string} command
 * @param {string[]} args
 * @param {{env?: Record<string, string|undefined>}} [options]
 * @returns {ChildProcessWithoutNullStreams}
 */
function launch(children, command, args, options = {}) {
  const child = spawn(command, args, { ...options, stdio: ['pipe', 'pipe', 'pipe'] });
  children.push(child);
  return child;
}

/**
 * Waits for the line that says the child is ready; what `match` returns for it.
 *
 * @template T
 * @param {ChildProcessWithoutNullStreams} child
 * @param {(line: string) => void} record where every line goes
 * @param {(line: string) => T | null | undefined} match
 * @returns {Promise<T>}
 */
function readyLine(child, record, match) {
  return new Promise((resolveReady, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${child.spawnfile}: not ready within ${STARTUP_DEADLINE_MS} ms (${processState(child.pid)})`)),
      STARTUP_DEADLINE_MS,
    );
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${child.spawnfile} exited before it was ready (code ${code}, signal ${signal})`));
    });
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    let found = false;
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on('line', (line) => {
        record(line);
        if (found) return;
        /** @type {T | null | undefined} */
        let value = null;
        try {
          value = match(line);
        } catch {
          value = null;
        }
        if (value) {
          found = true;
          clearTimeout(timer);
          resolveReady(value);
        }
      });
    }
  });
}

/**
 * SIGTERM, then SIGKILL after 5 s; resolves once the child has exited.
 *
 * @param {ChildProcessWithoutNullStreams} child
 */
async function stopChild(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolveExit) => child.once('exit', resolveExit));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}
