// Tests of the demo's command line, without a browser: `make run` (scripts/run-demo.mjs) stops
// before starting anything when a port it needs is taken, naming the setting that moves it, and
// `make dev` (agui-server dev) writes no ANSI colour codes when its output is not a terminal.

import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

import { REPO_ROOT, WEB_DIR } from '../scripts/stack.mjs';
import { assert } from './harness.mjs';

/** Listens on a free loopback port; resolves with it and a close function. */
function occupyPort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {import('node:net').AddressInfo} */ (server.address());
      resolve({ port, close: () => new Promise((done) => server.close(() => done())) });
    });
  });
}

/** Runs run-demo.mjs with `env` (and no GitHub or OpenAI settings of ours); its exit and output. */
function runDemo(env) {
  return new Promise((resolve) => {
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AGUI_') && !k.startsWith('OPENAI_')));
    const child = spawn(process.execPath, [join(WEB_DIR, 'scripts/run-demo.mjs')], { env: { ...clean, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    // Should it start the stack after all, stop it: the test fails on the exit code.
    const timer = setTimeout(() => child.kill('SIGTERM'), 30_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

export async function runDemoScriptTests(h) {
  const taken = await occupyPort();
  try {
    await h.test('make run: a taken app port stops the demo and names AGUI_WEB_PORT', async () => {
      const { code, output } = await runDemo({ AGUI_WEB_PORT: String(taken.port) });
      assert(code === 2, `exit ${code}: ${output.slice(0, 300)}`);
      assert(output.includes(`port ${taken.port} (the app) is taken`) && output.includes('set AGUI_WEB_PORT'), output);
    });
    await h.test("make run: a taken IdP port names AGUI_IDP_PORT, not the app's setting (control)", async () => {
      const { code, output } = await runDemo({ AGUI_WEB_PORT: '0', AGUI_IDP_PORT: String(taken.port) });
      assert(code === 2, `exit ${code}: ${output.slice(0, 300)}`);
      assert(output.includes('set AGUI_IDP_PORT') && !output.includes('AGUI_WEB_PORT'), output);
    });
    await h.test("make run with GitHub settings: a taken agui-server port names AGUI_PORT and the callback URL to register", async () => {
      const { code, output } = await runDemo({
        AGUI_WEB_PORT: '0',
        AGUI_PORT: String(taken.port),
        AGUI_GITHUB_CLIENT_ID: 'Iv1.example',
        AGUI_GITHUB_CLIENT_SECRET: 'not-a-real-secret',
      });
      assert(code === 2, `exit ${code}: ${output.slice(0, 300)}`);
      assert(output.includes('set AGUI_PORT') && output.includes(`http://127.0.0.1:${taken.port}/auth/github/callback`), output);
      assert(!output.includes('not-a-real-secret'), 'the secret was printed');
    });
  } finally {
    await taken.close();
  }

  await h.test('make dev (agui-server dev) writes no ANSI colour codes when its output is not a terminal', async () => {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AGUI_') && k !== 'NO_COLOR'));
    const child = spawn(join(REPO_ROOT, process.env.AGUI_SERVER_BIN ?? 'target/debug/agui-server'), ['dev', '--listen', '127.0.0.1:0'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines = [];
    try {
      await new Promise((resolve, reject) => {
        child.once('exit', (code) => reject(new Error(`agui-server dev exited (code ${code}): ${lines.join(' | ').slice(0, 300)}`)));
        for (const stream of [child.stdout, child.stderr]) {
          createInterface({ input: stream }).on('line', (line) => {
            lines.push(line);
            // Both kinds of output seen: a log line (stderr, where colour would be) and the banner.
            if (lines.some((l) => l.includes('INFO')) && lines.some((l) => l.includes('curl -N'))) resolve();
          });
        }
      });
    } finally {
      child.kill('SIGTERM');
    }
    const coloured = lines.filter((l) => l.includes('\x1b'));
    assert(coloured.length === 0, `ANSI codes in: ${JSON.stringify(coloured[0])}`);
  });
}
