// A tiny test harness for web/e2e: proves nothing by itself; counts passed, failed and skipped
// tests, prints TAP-like `ok - ` / `not ok - ` / `ok - … # SKIP` lines, and keeps going after a
// failure so one run reports everything.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

/** Per-test time limit: generous, the whole browser suite stays well under three minutes. */
export const TEST_TIMEOUT_MS = 60_000;

/** Test counts and reporting. */
export class Harness {
  constructor() {
    this.passed = 0;
    this.failed = 0;
    this.skipped = 0;
  }

  /**
   * Runs one test; a thrown error (or the time limit) fails it.
   *
   * @param {string} name
   * @param {() => Promise<void>} fn
   * @returns {Promise<boolean>} whether it passed
   */
  async test(name, fn) {
    let timer;
    try {
      await Promise.race([
        fn(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`timed out after ${TEST_TIMEOUT_MS} ms`)), TEST_TIMEOUT_MS);
        }),
      ]);
      this.passed += 1;
      console.log(`ok - ${name}`);
      return true;
    } catch (error) {
      this.failed += 1;
      console.log(`not ok - ${name}: ${String(error?.message ?? error).replace(/\s+/g, ' ').slice(0, 600)}`);
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Records a skipped test with its reason. */
  skip(name, reason) {
    this.skipped += 1;
    console.log(`ok - ${name} # SKIP ${reason}`);
  }

  /** Records a failure that happened outside a test (e.g. the stack did not start). */
  fail(name, reason) {
    this.failed += 1;
    console.log(`not ok - ${name}: ${String(reason).replace(/\s+/g, ' ').slice(0, 2000)}`);
  }

  /** Adds a child suite's counts (its lines were already relayed). */
  add({ passed = 0, failed = 0, skipped = 0 }) {
    this.passed += passed;
    this.failed += failed;
    this.skipped += skipped;
  }
}

/** Throws `message` unless `condition`. */
export function assert(condition, message) {
  if (!condition) throw new Error(message);
}

/** Where screenshots go (git-ignored). */
export function screenshotDir(webDir) {
  const dir = join(webDir, 'e2e/screenshots');
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true });
  return dir;
}

/**
 * agui-server's audit records in the stack's store, read with its own CLI
 * (`agui-server audit --kind … [--thread …] [--since …]`, one JSON object per line).
 *
 * @param {{serverBin: string, databaseUrl: string}} stack
 * @param {{kind: string, thread?: string, since?: number}} filter `since`: epoch ms
 * @returns {object[]}
 */
export function auditRecords(stack, { kind, thread, since }) {
  const args = ['audit', '--database-url', stack.databaseUrl, '--kind', kind];
  if (thread) args.push('--thread', thread);
  if (since !== undefined) args.push('--since', String(since));
  // Only the store is needed: none of the stack's AGUI_* settings (issuer, config) go along.
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('AGUI_')));
  const result = spawnSync(stack.serverBin, args, { encoding: 'utf8', env });
  if (result.status !== 0) throw new Error(`agui-server audit failed (exit ${result.status}): ${result.stderr.trim().slice(0, 500)}`);
  return result.stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line));
}

/**
 * One scripted-model run straight against agui-server's `/chat` (no runtime, no browser), for
 * checking server-side effects such as "document 2 still exists". Returns the parsed events.
 *
 * @param {string} aguiUrl
 * @param {string} token the user's access token
 * @param {string} message the user message
 * @returns {Promise<{status: number, events: object[]}>}
 */
export async function chatDirect(aguiUrl, token, message) {
  const response = await fetch(`${aguiUrl}/chat`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify({
      threadId: `direct-${Math.random().toString(36).slice(2)}`,
      runId: `run-${Math.random().toString(36).slice(2)}`,
      messages: [{ id: 'm1', role: 'user', content: message }],
      tools: [],
      context: [],
      state: {},
      forwardedProps: {},
    }),
  });
  return { status: response.status, events: sseEvents(await response.text()) };
}

/**
 * The events of an SSE body (`data: {json}` frames separated by a blank line), parsed.
 *
 * @param {string} text
 * @returns {object[]}
 */
export function sseEvents(text) {
  return text
    .split('\n\n')
    .map((frame) => frame.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).join(''))
    .filter(Boolean)
    .map((data) => JSON.parse(data));
}

/** The content of the first TOOL_CALL_RESULT of a run, parsed. */
export function toolResult(events) {
  const result = events.find((e) => e.type === 'TOOL_CALL_RESULT');
  return result ? JSON.parse(result.content) : undefined;
}
