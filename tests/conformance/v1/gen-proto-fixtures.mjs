// Generates the protobuf byte-parity fixtures for agui-protocol's encoder.
//
// Regenerate (from the repository root, after `npm ci` in tests/conformance/v1):
//
//     node tests/conformance/v1/gen-proto-fixtures.mjs
//
// Input:  server/protocol/tests/fixtures/proto/events.json   (the corpus: a JSON array of events)
// Output: server/protocol/tests/fixtures/proto/expected.json (committed, so `cargo test` needs no Node)
//
// Each corpus event is framed exactly as an AG-UI 1.0 producer on the official packages frames
// it: `EventEncoder.encodeProtobuf` of `@ag-ui/encoder@1.0.0` = a 4-byte big-endian length, then
// `encode(event)` of `@ag-ui/proto@1.0.0` (reference §3.4). The frame is also decoded back with
// `decode` of `@ag-ui/proto@1.0.0`, so the Rust decoder can be checked against the official one.
// Output entries, in corpus order:
//
//     { "type": "...", "event": {...}, "frameHex": "...", "decoded": {...} }
//
// The Rust test reads the corpus itself (not `event` here) because JSON.parse reorders
// integer-like object keys, and the encoder must reproduce that reordering on its own.
//
// The script refuses to write anything if an event fails @ag-ui/core's schema (the encoder
// would only warn and encode it anyway): the corpus must be valid AG-UI 1.0.

import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { decode } from "@ag-ui/proto";
import { EventEncoder, AGUI_MEDIA_TYPE } from "@ag-ui/encoder";

const here = dirname(fileURLToPath(import.meta.url));
const fixtures = join(here, "..", "..", "..", "server", "protocol", "tests", "fixtures", "proto");
const corpusPath = join(fixtures, "events.json");
const expectedPath = join(fixtures, "expected.json");

// The encoder reports schema failures through console.warn and carries on; a fixture built
// from an invalid event would pin down behaviour nobody should rely on, so make it fatal.
const warn = console.warn;
console.warn = (...args) => {
  warn(...args);
  throw new Error(`@ag-ui warned while encoding: ${args.join(" ")}`);
};

const encoder = new EventEncoder({ accept: AGUI_MEDIA_TYPE });
if (encoder.getContentType() !== AGUI_MEDIA_TYPE) {
  throw new Error(`encoder did not select protobuf: ${encoder.getContentType()}`);
}

const hex = (bytes) => Buffer.from(bytes).toString("hex");

const corpus = JSON.parse(readFileSync(corpusPath, "utf8"));
if (!Array.isArray(corpus)) throw new Error("events.json must be a JSON array of events");

const out = corpus.map((event, index) => {
  // The encoder must not see (or mutate) the object we write back out.
  const frame = encoder.encodeProtobuf(structuredClone(event));
  const length = new DataView(frame.buffer, frame.byteOffset, 4).getUint32(0, false);
  if (length !== frame.length - 4) throw new Error(`event ${index}: bad frame length`);
  const decoded = decode(frame.subarray(4));
  return { type: event.type, event, frameHex: hex(frame), decoded };
});

writeFileSync(expectedPath, JSON.stringify(out, null, 2) + "\n");
const types = new Set(out.map((entry) => entry.type));
console.log(`wrote ${out.length} frames (${types.size} event types) to ${expectedPath}`);
