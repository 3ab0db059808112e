// The AG-UI 1.0 conformance suite: proves that agui-server works with the official
// @ag-ui/client 1.0.0 HttpAgent in the full 1.0 dialect (every shared scenario in
// ../scenarios.mjs: exact sequences, protocolVersion "1.0", pendingToolCallIds, RFC 6750 errors),
// and that its protobuf binding (@ag-ui/proto 1.0.0: exact media type, 4-byte big-endian framing)
// carries the same events as its SSE stream for every streamed run of those scenarios.
// Run through ../run.mjs, which starts the IdP and agui-server and sets AGUI_URL, AGUI_TOKEN, ...

import assert from 'node:assert/strict';

import { HttpAgent } from '@ag-ui/client';
import { EventSchemas } from '@ag-ui/core/schemas';
import { AGUI_MEDIA_TYPE, decode } from '@ag-ui/proto';

import { makeDriver } from '../driver.mjs';
import { runOpenAiScenarios } from '../openai-scenarios.mjs';
import { runScenarios, SCENARIOS, suiteContext } from '../scenarios.mjs';
import { PROTO_MEDIA_TYPE, reporter } from '../wire.mjs';

const ctx = await suiteContext();
const clientOptions = {
  name: 'v1',
  HttpAgent,
  parseEvent: (event) => EventSchemas.parse(event),
  dialect: '1.0',
};
// Every run this driver streams is replayed over protobuf and compared (assertStreamedRun).
const driver = makeDriver({ ...clientOptions, url: ctx.url, proto: { mediaType: AGUI_MEDIA_TYPE, decode } });
// The same client against the agui-server whose model is the OpenAI provider (and the mock). No
// protobuf replay there: each replay would consume one of the mock's scripted replies.
const openAiDriver = makeDriver({ ...clientOptions, url: ctx.openaiUrl });
const report = reporter('v1');

await report.test('the protobuf media type we test is the one @ag-ui/proto 1.0.0 defines', async () => {
  assert.equal(AGUI_MEDIA_TYPE, PROTO_MEDIA_TYPE);
});

// Which scenarios stream at least one run: counted while they run, so the check below fails if
// the replay is ever switched off or skipped.
const streamedScenarios = [];
await runScenarios(driver, ctx, {
  async test(name, fn) {
    const before = driver.protoCompared;
    await report.test(name, fn);
    if (driver.protoCompared > before) streamedScenarios.push(name);
  },
});
await runOpenAiScenarios(openAiDriver, ctx, report);

await report.test('protobuf: every streamed scripted run decoded with @ag-ui/proto and equalled its SSE events', async () => {
  // Only the HTTP-error scenarios stream nothing; every other one must have had its runs
  // compared (each run of a scenario is; a failed comparison fails that scenario above).
  const expected = SCENARIOS.filter((s) => !s.httpOnly).map((s) => s.name);
  assert.deepEqual(streamedScenarios, expected, 'scenarios whose runs were replayed over protobuf');
});

process.exitCode = report.counts.failed === 0 ? 0 : 1;
