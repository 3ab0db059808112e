// The AG-UI 1.0 conformance suite: proves that agui-server works with the official
// @ag-ui/client 1.0.0 HttpAgent in the full 1.0 dialect (every shared scenario in
// ../scenarios.mjs: exact sequences, protocolVersion "1.0", pendingToolCallIds, RFC 6750 errors),
// and that its protobuf binding (@ag-ui/proto 1.0.0: exact media type, 4-byte big-endian framing)
// carries the same events as its SSE stream for scenarios 1-5.
// Run through ../run.mjs, which starts the IdP and agui-server and sets AGUI_URL, AGUI_TOKEN, ...

import assert from 'node:assert/strict';

import { HttpAgent } from '@ag-ui/client';
import { EventSchemas } from '@ag-ui/core/schemas';
import { AGUI_MEDIA_TYPE, decode } from '@ag-ui/proto';

import { makeDriver } from '../driver.mjs';
import { runOpenAiScenarios } from '../openai-scenarios.mjs';
import { assertSameEvents, PROTO_CASES, rawChat, runInput, runScenarios, suiteContext, zodIssues } from '../scenarios.mjs';
import { normaliseRun, parseSse, PROTO_MEDIA_TYPE, reporter, schemaKeptEverything, splitProtoFrames } from '../wire.mjs';

const ctx = await suiteContext();
const clientOptions = {
  name: 'v1',
  HttpAgent,
  parseEvent: (event) => EventSchemas.parse(event),
  dialect: '1.0',
};
const driver = makeDriver({ ...clientOptions, url: ctx.url });
// The same client against the agui-server whose model is the OpenAI provider (and the mock).
const openAiDriver = makeDriver({ ...clientOptions, url: ctx.openaiUrl });
const report = reporter('v1');

await runScenarios(driver, ctx, report);
await runOpenAiScenarios(openAiDriver, ctx, report);

await report.test('the protobuf media type we test is the one @ag-ui/proto 1.0.0 defines', async () => {
  assert.equal(AGUI_MEDIA_TYPE, PROTO_MEDIA_TYPE);
});

for (const { name, text, tools } of PROTO_CASES) {
  await report.test(`protobuf: ${name} decodes with @ag-ui/proto and equals the SSE events`, async () => {
    const proto = await rawChat(ctx.url, { token: ctx.token, input: runInput({ text, tools }), accept: AGUI_MEDIA_TYPE });
    assert.equal(proto.status, 200, `HTTP ${proto.status}`);
    // Exact string: the client picks its parser by equality (agui-1.0.md §3.1), so a parameter
    // would make it parse protobuf as SSE and silently see nothing.
    assert.equal(proto.headers.get('content-type'), AGUI_MEDIA_TYPE);
    const decoded = splitProtoFrames(proto.body).map((frame) => JSON.parse(JSON.stringify(decode(frame))));
    decoded.forEach((event, i) => {
      let parsed;
      try {
        parsed = EventSchemas.parse(event);
      } catch (error) {
        assert.fail(`frame ${i} (${event.type}) fails the 1.0 schema: ${zodIssues(error)}`);
      }
      const problem = schemaKeptEverything(event, parsed);
      if (problem) assert.fail(`frame ${i} (${event.type}) through the 1.0 schema: ${problem}`);
    });
    const sse = await rawChat(ctx.url, { token: ctx.token, input: runInput({ text, tools }) });
    assert.equal(sse.status, 200, `SSE HTTP ${sse.status}`);
    const events = parseSse(sse.body);
    assert.ok(['RUN_FINISHED', 'RUN_ERROR'].includes(events.at(-1).type), 'SSE run has a terminal event');
    assertSameEvents(normaliseRun(decoded), normaliseRun(events), 'protobuf vs SSE (ids and timestamps normalised)');
  });
}

process.exitCode = report.counts.failed === 0 ? 0 : 1;
