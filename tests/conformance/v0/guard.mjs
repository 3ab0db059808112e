// The sequence guard against @ag-ui/client 0.0.59's rules (the client CopilotKit ships): every
// guard-accepted sequence, in the form the 0.0.x dialect sends it (Dialect::Legacy.adapt), passes
// 0.0.59's EventSchemas, transformChunks and verifyEvents (../guard-sequences.mjs).
// Run through ../run.mjs, which generates the sequences and sets AGUI_GUARD_SEQUENCES.

import { transformChunks, verifyEvents } from '@ag-ui/client';
import { EventSchemas } from '@ag-ui/core';
import { from, lastValueFrom, toArray } from 'rxjs';

import { checkGuardSequences } from '../guard-sequences.mjs';
import { reporter } from '../wire.mjs';

const report = reporter('v0');
await checkGuardSequences({
  form: 'legacy',
  verifyEvents,
  transformChunks,
  parseEvent: (event) => EventSchemas.parse(event),
  rx: { from, lastValueFrom, toArray },
  report,
});
process.exitCode = report.counts.failed === 0 ? 0 : 1;
