// The sequence guard against @ag-ui/client 1.0.0's rules: every guard-accepted sequence (its 1.0
// form) passes 1.0's EventSchemas, transformChunks and verifyEvents (../guard-sequences.mjs).
// Run through ../run.mjs, which generates the sequences and sets AGUI_GUARD_SEQUENCES.

import { transformChunks, verifyEvents } from '@ag-ui/client';
import { EventSchemas } from '@ag-ui/core/schemas';
import { from, lastValueFrom, toArray } from 'rxjs';

import { checkGuardSequences } from '../guard-sequences.mjs';
import { reporter } from '../wire.mjs';

const report = reporter('v1');
await checkGuardSequences({
  form: 'v1',
  verifyEvents,
  transformChunks,
  parseEvent: (event) => EventSchemas.parse(event),
  rx: { from, lastValueFrom, toArray },
  report,
});
process.exitCode = report.counts.failed === 0 ? 0 : 1;
