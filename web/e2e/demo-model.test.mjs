// `OPENAI_API_KEY=… make run` must start: agui-server refuses the OpenAI provider without a model
// name (AGUI_OPENAI_MODEL), so the demo supplies one (scripts/stack.mjs `modelEnv`). Checked with
// agui-server's own `check-config`, which applies exactly the validation `serve` does at start.
// Exported for web/e2e/run.mjs.

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

import { DEFAULT_OPENAI_MODEL, modelEnv, REPO_ROOT } from '../scripts/stack.mjs';
import { assert } from './harness.mjs';

const FAKE_KEY = 'sk-demo-model-test-not-a-real-key';

function checkConfig(extraEnv) {
  const serverBin = resolve(REPO_ROOT, process.env.AGUI_SERVER_BIN ?? 'target/debug/agui-server');
  assert(existsSync(serverBin), `${serverBin} is missing: run \`cargo build -p agui-server\` first`);
  const env = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '',
    AGUI_OIDC_ISSUER: 'http://127.0.0.1:1',
    AGUI_OIDC_AUDIENCE: 'agui-server',
    ...extraEnv,
  };
  const result = spawnSync(serverBin, ['check-config'], { encoding: 'utf8', env });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

/** @param {import('./harness.mjs').Harness} h */
export async function runDemoModelTests(h) {
  await h.test('demo: modelEnv picks scripted, or openai with AGUI_OPENAI_MODEL / OPENAI_MODEL / the default model', async () => {
    const cases = [
      [{}, { AGUI_MODEL: 'scripted' }],
      [{ OPENAI_API_KEY: 'k' }, { AGUI_MODEL: 'openai', AGUI_OPENAI_MODEL: DEFAULT_OPENAI_MODEL }],
      [{ OPENAI_BASE_URL: 'http://127.0.0.1:11434/v1', OPENAI_MODEL: 'llama3.2' }, { AGUI_MODEL: 'openai', AGUI_OPENAI_MODEL: 'llama3.2' }],
      [{ OPENAI_API_KEY: 'k', OPENAI_MODEL: 'a', AGUI_OPENAI_MODEL: 'b' }, { AGUI_MODEL: 'openai', AGUI_OPENAI_MODEL: 'b' }],
      [{ OPENAI_API_KEY: 'k', OPENAI_MODEL: '  ' }, { AGUI_MODEL: 'openai', AGUI_OPENAI_MODEL: DEFAULT_OPENAI_MODEL }],
    ];
    for (const [env, expected] of cases) {
      const actual = modelEnv(env);
      assert(JSON.stringify(actual) === JSON.stringify(expected), `${JSON.stringify(env)} → ${JSON.stringify(actual)}`);
    }
  });

  await h.test('demo: with only OPENAI_API_KEY set, agui-server accepts the settings the demo gives it (without a model name it would not start)', async () => {
    // Control: the OpenAI provider without a model name is refused, so the check below can fail.
    const bare = checkConfig({ AGUI_MODEL: 'openai', OPENAI_API_KEY: FAKE_KEY });
    assert(bare.status !== 0 && bare.output.includes('AGUI_OPENAI_MODEL'), `without a model: exit ${bare.status}: ${bare.output.slice(0, 300)}`);
    const demo = checkConfig({ OPENAI_API_KEY: FAKE_KEY, ...modelEnv({ OPENAI_API_KEY: FAKE_KEY }) });
    assert(demo.status === 0, `the demo's settings: exit ${demo.status}: ${demo.output.slice(0, 300)}`);
    assert(demo.output.includes(`model = "${DEFAULT_OPENAI_MODEL}"`), 'the effective configuration does not name the model');
    assert(!demo.output.includes(FAKE_KEY), 'check-config printed the API key');
  });
}
