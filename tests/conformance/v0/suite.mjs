// The AG-UI 0.0.x conformance suite: proves that agui-server works with @ag-ui/client 0.0.59, the
// client CopilotKit 1.74/1.75 ships, which never sends protocolVersion and rejects 1.0-only shapes
// (outcome.pendingToolCallIds, outcome "cancelled", content-part tool results): every shared
// scenario in ../scenarios.mjs, judged with 0.0.59's own EventSchemas, so the server's 0.0.x
// dialect must pass that version's schema member for member.
// Run through ../run.mjs, which starts the IdP and agui-server and sets AGUI_URL, AGUI_TOKEN, ...

import { HttpAgent } from '@ag-ui/client';
import { EventSchemas } from '@ag-ui/core';

import { makeDriver } from '../driver.mjs';
import { runOpenAiScenarios } from '../openai-scenarios.mjs';
import { runScenarios, suiteContext } from '../scenarios.mjs';
import { reporter } from '../wire.mjs';

const ctx = await suiteContext();
const clientOptions = {
  name: 'v0',
  HttpAgent,
  parseEvent: (event) => EventSchemas.parse(event),
  dialect: '0.0',
  // 0.0.59's schema fills TEXT_MESSAGE_START.role with its default "assistant" when absent.
  schemaDefaults: { TEXT_MESSAGE_START: ['role'] },
};
const driver = makeDriver({ ...clientOptions, url: ctx.url });
// The same client against the agui-server whose model is the OpenAI provider (and the mock).
const openAiDriver = makeDriver({ ...clientOptions, url: ctx.openaiUrl });
const report = reporter('v0');

await runScenarios(driver, ctx, report);
await runOpenAiScenarios(openAiDriver, ctx, report);

process.exitCode = report.counts.failed === 0 ? 0 : 1;
