// The sequence guard against the official client's rules (issue #12, property-based tests): every
// event sequence agui-server's SequenceGuard accepts must pass the client's own pipeline.
//
// The sequences come from the Rust example `guard_sequences` (server/protocol/examples): random
// candidate events over a small id space, filtered through the guard and closed the way a run
// is closed, with a fixed seed, each in both forms the server sends: `v1` as is, `legacy` after
// a legacy `DialectAdapter`, as the sink sends them. run.mjs runs that binary once, writes its output to a file and
// passes the path as AGUI_GUARD_SEQUENCES to v1/guard.mjs and v0/guard.mjs, which inject their
// own client version here (this file must not import @ag-ui/*, like scenarios.mjs).
//
// Each event is parsed with that version's EventSchemas (the client's enforcement: a malformed
// known member is fatal), then the whole sequence runs through transformChunks and verifyEvents
// exactly as the client's runAgent pipeline does. Any rejection fails the test and is reported
// with its sequence number and the client's message.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

/** How many rejections are spelled out in a failure (the rest are counted). */
const SHOWN = 5;

/**
 * Checks every sequence of one form against one client version.
 *
 * @param {object} options
 * @param {string} options.form `v1` or `legacy`: which form of each sequence this client reads
 * @param {(debug: boolean) => Function} options.verifyEvents the client's verifyEvents
 * @param {(debug: boolean) => Function} options.transformChunks the client's transformChunks
 * @param {(event: object) => object} options.parseEvent the client's EventSchemas.parse
 * @param {{from: Function, lastValueFrom: Function, toArray: Function}} options.rx rxjs, from
 *   the client's own tree
 * @param {{test: Function}} options.report the suite's reporter (wire.mjs)
 */
export async function checkGuardSequences({ form, verifyEvents, transformChunks, parseEvent, rx, report }) {
  const file = process.env.AGUI_GUARD_SEQUENCES;
  const document = file ? JSON.parse(readFileSync(file, 'utf8')) : undefined;
  const sequences = document?.sequences ?? [];
  const events = sequences.reduce((n, s) => n + s[form].length, 0);
  const name = `guard: ${sequences.length} guard-accepted random sequences (seed ${document?.seed}, ${events} events) pass the client's schemas, transformChunks and verifyEvents`;
  await report.test(name, async () => {
    assert.ok(file, 'AGUI_GUARD_SEQUENCES is not set (run.mjs sets it)');
    assert.ok(sequences.length > 0, `no sequences in ${file}`);
    const rejected = [];
    for (const [index, sequence] of sequences.entries()) {
      const list = sequence[form];
      try {
        list.forEach((event) => parseEvent(event));
        const out = await rx.lastValueFrom(rx.from(list).pipe(transformChunks(false), verifyEvents(false), rx.toArray()));
        assert.ok(out.length >= list.length, 'the client dropped events');
      } catch (error) {
        rejected.push(`#${index}: ${error.message} in [${list.map((e) => e.type).join(', ')}]`);
      }
    }
    // Positive control: the same pipeline rejects a sequence the guard refuses.
    const open = [
      { type: 'RUN_STARTED', threadId: 't', runId: 'r' },
      { type: 'TEXT_MESSAGE_START', messageId: 'm' },
      { type: 'RUN_FINISHED', threadId: 't', runId: 'r' },
    ];
    await assert.rejects(rx.lastValueFrom(rx.from(open).pipe(transformChunks(false), verifyEvents(false), rx.toArray())));
    const shown = rejected.slice(0, SHOWN).join('; ');
    assert.equal(rejected.length, 0, `${rejected.length} of ${sequences.length} rejected: ${shown}`);
  });
}
