// Unit tests of the app's pure modules (web/src/errors.ts, markdown.ts, identity.ts, threads.ts,
// toolResults.ts),
// no browser: the TypeScript is transpiled with the project's own `typescript` (types are checked
// by the `tsc --noEmit` test) and imported from a temporary file under web/node_modules, so that
// its own imports (zod) resolve. Exported for web/e2e/run.mjs.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { WEB_DIR } from '../scripts/stack.mjs';
import { assert } from './harness.mjs';

async function importTs(relativePath) {
  const { default: ts } = await import('typescript');
  const source = readFileSync(join(WEB_DIR, relativePath), 'utf8');
  const { outputText } = ts.transpileModule(source, {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    fileName: relativePath,
  });
  const dir = mkdtempSync(join(WEB_DIR, 'node_modules', '.agui-web-unit-'));
  try {
    const file = join(dir, 'module.mjs');
    writeFileSync(file, outputText);
    return await import(pathToFileURL(file).href);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const same = (actual, expected, what) =>
  assert(JSON.stringify(actual) === JSON.stringify(expected), `${what}: ${JSON.stringify(actual)} ≠ ${JSON.stringify(expected)}`);

/** @param {import('./harness.mjs').Harness} h */
export async function runAppUnitTests(h) {
  const { classifyRunError } = await importTs('src/errors.ts');
  const { showJsonLiterally } = await importTs('src/markdown.ts');

  // The message shapes are the ones CopilotKit's runtime produces from agui-server's answers
  // ("HTTP <status>: <body>", shared/reference/copilotkit.md §3) and the ones the client reports
  // for a failed fetch.
  await h.test('unit: classifyRunError: HTTP 401 with our JSON code → "expired" with the code', async () => {
    same(classifyRunError('HTTP 401: {"error":"invalid_token","message":"the token has expired"}'), { kind: 'expired', code: 'invalid_token' }, '401');
    same(classifyRunError('  HTTP 401: {"error":"unauthorized","message":"sign in first"}\n'), { kind: 'expired', code: 'unauthorized' }, '401, padded');
  });

  await h.test('unit: classifyRunError: HTTP 403 → "forbidden" with the code and agui-server\'s message', async () => {
    same(
      classifyRunError('HTTP 403: {"error":"insufficient_scope","message":"the token lacks a required scope or role: admin"}'),
      { kind: 'forbidden', code: 'insufficient_scope', detail: 'the token lacks a required scope or role: admin' },
      '403',
    );
  });

  await h.test('unit: classifyRunError: 429, 5xx, other statuses and a non-JSON body → a human message', async () => {
    const limited = classifyRunError('HTTP 429: {"error":"rate_limited","message":"too many runs; retry in 60 s"}');
    assert(limited.kind === 'other' && /too many requests/i.test(limited.detail), `429: ${JSON.stringify(limited)}`);
    const down = classifyRunError('HTTP 503: {"error":"store_unavailable","message":"the store is unavailable"}');
    assert(down.kind === 'other' && down.detail.includes('HTTP 503') && /unavailable/.test(down.detail), `503: ${JSON.stringify(down)}`);
    const proxy = classifyRunError('HTTP 502: <html><body>Bad Gateway</body></html>');
    assert(proxy.kind === 'other' && proxy.detail.includes('HTTP 502'), `502 with HTML: ${JSON.stringify(proxy)}`);
    same(classifyRunError('HTTP 404: {"error":"thread_not_found","message":"no such thread"}'), { kind: 'other', detail: 'no such thread' }, '404');
    same(classifyRunError('HTTP 400: not json at all'), { kind: 'other', detail: 'The request failed (HTTP 400).' }, '400, non-JSON');
    same(classifyRunError('HTTP 401: <html>expired</html>'), { kind: 'expired', code: 'unauthorized' }, '401, non-JSON');
    same(classifyRunError('HTTP 403: '), { kind: 'forbidden', code: 'forbidden', detail: '' }, '403, empty body');
  });

  await h.test('unit: classifyRunError: a network failure or any other message is shown as it is (shortened)', async () => {
    same(classifyRunError('TypeError: Failed to fetch'), { kind: 'other', detail: 'TypeError: Failed to fetch' }, 'network');
    same(classifyRunError('fetch failed'), { kind: 'other', detail: 'fetch failed' }, 'undici');
    same(classifyRunError(''), { kind: 'other', detail: 'Something went wrong.' }, 'empty');
    const long = classifyRunError(`Agent execution failed: ${'x '.repeat(300)}`);
    assert(long.kind === 'other' && long.detail.length === 198 && long.detail.endsWith('…'), `long: ${long.detail.length}`);
    // "HTTP" not at the start is not a status line.
    same(classifyRunError('proxy said HTTP 401: no'), { kind: 'other', detail: 'proxy said HTTP 401: no' }, 'embedded');
  });

  await h.test('unit: showJsonLiterally puts JSON in code spans (no autolinks) and leaves prose alone', async () => {
    const reply = 'The custom tool returned: {"issuer":"http://127.0.0.1:8080","name":"Vera Viewer","roles":["viewer"]}';
    same(
      showJsonLiterally(reply),
      'The custom tool returned: `{"issuer":"http://127.0.0.1:8080","name":"Vera Viewer","roles":["viewer"]}`',
      'tool reply',
    );
    same(showJsonLiterally('list: [1, 2]\nno json {here}'), 'list: `[1, 2]`\nno json {here}', 'per line');
    for (const prose of ['Hello, Vera Viewer! You said: "hi"', 'see [the docs](https://example.test)', 'already `{"a":1}` code', '{"a":1', 'a "quoted" 42']) {
      same(showJsonLiterally(prose), prose, `unchanged: ${prose}`);
    }
  });

  const { parseWhoAmI } = await importTs('src/identity.ts');
  const threads = await importTs('src/threads.ts');

  await h.test("unit: parseWhoAmI: agui-server's identity (null name and email allowed) is accepted; a wrong shape or a refusal is a failure, never an identity", async () => {
    const who = { issuer: 'http://idp', subject: 'vera', name: null, email: null, roles: ['viewer'], scopes: [] };
    same(parseWhoAmI(200, JSON.stringify(who)), { ok: true, who }, 'null name/email');
    same(parseWhoAmI(401, '{"error":"invalid_token"}'), { ok: false, status: 401, message: 'HTTP 401: {"error":"invalid_token"}' }, '401');
    for (const [what, body] of [
      ['no subject', JSON.stringify({ ...who, subject: undefined })],
      ['roles not a list', JSON.stringify({ ...who, roles: 'admin' })],
      ['a list', '[]'],
      ['not JSON', '<html>'],
    ]) {
      const answer = parseWhoAmI(200, body);
      assert(answer.ok === false && answer.status === 502, `${what}: ${JSON.stringify(answer)}`);
    }
  });

  await h.test("unit: the current thread id is kept per issuer and subject, and a malformed stored id is ignored", async () => {
    const store = new Map();
    const storage = { getItem: (k) => (store.has(k) ? store.get(k) : null), setItem: (k, v) => store.set(k, String(v)) };
    threads.saveThreadId(storage, 'http://idp', 'vera', 'thread-vera');
    threads.saveThreadId(storage, 'http://idp', 'ada', 'thread-ada');
    same(threads.loadThreadId(storage, 'http://idp', 'vera'), 'thread-vera', 'vera');
    same(threads.loadThreadId(storage, 'http://idp', 'ada'), 'thread-ada', 'ada');
    // The same subject at another issuer is another user; "a:b"+"c" is not "a"+"b:c".
    same(threads.loadThreadId(storage, 'http://other', 'vera'), undefined, 'other issuer');
    assert(threads.threadStorageKey('a:b', 'c') !== threads.threadStorageKey('a', 'b:c'), 'ambiguous storage keys');
    for (const bad of ['', 'has space', 'x'.repeat(129), '../../etc', '<script>']) {
      store.set(threads.threadStorageKey('http://idp', 'eve'), bad);
      same(threads.loadThreadId(storage, 'http://idp', 'eve'), undefined, `stored ${JSON.stringify(bad)}`);
    }
    const broken = { getItem: () => { throw new Error('SecurityError'); }, setItem: () => { throw new Error('QuotaExceededError'); } };
    same(threads.loadThreadId(broken, 'http://idp', 'vera'), undefined, 'storage disabled');
    threads.saveThreadId(broken, 'http://idp', 'vera', 'x'); // does not throw
    const minted = threads.newThreadId();
    assert(minted !== threads.newThreadId() && /^[0-9a-f-]{36}$/.test(minted), `new ids: ${minted}`);
  });

  await h.test("unit: the thread list is parsed as agui-server's /copilotkit/threads answer; anything else is refused", async () => {
    const answer = {
      threads: [{ id: 't2', name: 'second', agentId: 'default', createdAt: '2026-12-02T07:31:19.034Z', updatedAt: '2026-12-02T07:32:00.000Z', lastRunAt: '2026-12-02T07:32:00.000Z' }, { id: 't1', name: null, createdAt: 'x', updatedAt: 'y', lastRunAt: null }],
      nextCursor: null,
    };
    const parsed = threads.ThreadListSchema.parse(answer);
    same(parsed.threads.map((t) => [t.id, t.name]), [['t2', 'second'], ['t1', null]], 'ids and names, in order');
    for (const [what, bad] of [['no threads', {}], ['an id that is not a string', { threads: [{ id: 1, createdAt: 'x', updatedAt: 'y' }] }], ['an empty id', { threads: [{ id: '', createdAt: 'x', updatedAt: 'y' }] }]]) {
      assert(!threads.ThreadListSchema.safeParse(bad).success, `accepted ${what}`);
    }
  });

  const { cardModel, stateRows } = await importTs('src/toolResults.ts');
  // The results as agui-server's tools (server/agent/src/tools) and the app's frontend tool
  // (src/ChatTools.tsx) produce them.
  const successes = {
    whoami: [{ issuer: 'http://idp', subject: 'vera', name: 'Vera Viewer', email: 'vera@example.test', roles: ['viewer'], scopes: [] }, { kind: 'identity', name: 'Vera Viewer', email: 'vera@example.test', roles: ['viewer'] }],
    list_my_documents: [{ documents: [{ id: 1, title: 'Welcome' }, { id: 3, title: 'Meeting notes' }] }, { kind: 'documents', documents: [{ id: '1', title: 'Welcome' }, { id: '3', title: 'Meeting notes' }] }],
    get_document: [{ id: 2, title: 'Quarterly plan', body: 'Goals' }, { kind: 'document', id: '2', title: 'Quarterly plan', body: 'Goals' }],
    delete_document: [{ deleted: 2 }, { kind: 'deleted', id: '2' }],
    set_preference: [{ preference: 'theme', value: 'dark' }, { kind: 'preference', key: 'theme', value: 'dark' }],
    change_accent_color: [{ color: 'teal' }, { kind: 'accent', color: 'teal' }],
  };
  // One refusal or failure per card, each the way that tool really refuses.
  const refusals = {
    whoami: [{ error: 'tool_timeout', message: 'the tool took too long and was stopped' }, 'Timed out'],
    list_my_documents: [{ error: 'tool_error', message: 'the store is unavailable' }, 'Tool failed'],
    get_document: [{ error: 'not_found', message: 'you have no document 99' }, 'Not found'],
    delete_document: [{ error: 'tool_not_allowed', message: 'you are not allowed to use this tool' }, 'Not allowed'],
    set_preference: [{ error: 'invalid_arguments', message: '/key: longer than 64 characters' }, 'Refused'],
    change_accent_color: [{ error: 'invalid_color', message: '"notacolour" is not a CSS colour; the accent is unchanged' }, 'Refused'],
  };

  await h.test('unit: every tool card reads a success from the tool\'s result (positive control for the refusals)', async () => {
    for (const [tool, [result, model]] of Object.entries(successes)) {
      same(cardModel(tool, 'complete', JSON.stringify(result)), model, tool);
      same(cardModel(tool, 'executing', undefined), { kind: 'pending' }, `${tool} executing`);
    }
  });

  await h.test('unit: every tool card shows the refusal or failure in its result, never what the call asked for', async () => {
    for (const [tool, [result, title]] of Object.entries(refusals)) {
      const model = cardModel(tool, 'complete', JSON.stringify(result));
      same(model, { kind: 'refused', code: result.error, title, message: result.message, denied: result.error === 'tool_not_allowed' }, tool);
    }
    // A frontend handler that threw, as CopilotKit stores it.
    same(cardModel('change_accent_color', 'complete', 'Error: boom'), { kind: 'refused', code: 'tool_error', title: 'Tool failed', message: 'boom', denied: false }, 'threw');
    // The old string answer of the accent tool, or a result of another shape, is not a success.
    for (const [tool, text] of [['change_accent_color', '"notacolour" is not a colour; the accent is unchanged'], ['change_accent_color', '{}'], ['delete_document', '{"id":2}'], ['whoami', '[]'], ['list_my_documents', ''], ['set_preference', '{"preference":"theme"}']]) {
      same(cardModel(tool, 'complete', text), { kind: 'unexpected', text }, `${tool} ${text}`);
    }
  });

  await h.test('unit: the shared-state panel lists the preferences, then the other members; nothing for a non-object', async () => {
    same(stateRows({ preferences: { theme: 'dark', size: 2 }, counter: 1 }), [
      { key: 'theme', value: 'dark', preference: true },
      { key: 'size', value: '2', preference: true },
      { key: 'counter', value: '1', preference: false },
    ], 'preferences first');
    same(stateRows({ preferences: 'odd' }), [{ key: 'preferences', value: 'odd', preference: false }], 'preferences not an object');
    for (const empty of [undefined, null, {}, [], 'x']) same(stateRows(empty), [], `empty ${JSON.stringify(empty)}`);
  });
}
