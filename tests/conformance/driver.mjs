// The client driver shared by both suites: proves nothing by itself; wraps one version's official
// `HttpAgent` (injected by the suite, so this file imports no @ag-ui package) so a scenario can
// run it exactly as an app would (`addMessage`, `runAgent({tools}, subscriber)`) and get back
// everything needed to judge the run: what the client sent, every event it delivered, the raw
// bytes the server sent, errors it reported and anything it printed.

import { randomUUID } from 'node:crypto';

import { recordingFetch, withConsoleCapture } from './wire.mjs';

// Native fetch, captured before any suite could wrap it (the protobuf replay is not recorded).
const nativeFetch = globalThis.fetch;

/** A run that has not settled after this long failed (a liveness guard, not a speed check). */
const RUN_DEADLINE_MS = 30_000;

/**
 * @typedef {object} RunRecord
 * @property {object|undefined} input the RunAgentInput the client POSTed
 * @property {number|undefined} status HTTP status of the response
 * @property {Headers|undefined} headers response headers
 * @property {Uint8Array|undefined} body the complete raw response body
 * @property {object[]} clientEvents every event the client delivered to `onEvent`, in order
 * @property {object[]} runErrorEvents events delivered to `onRunErrorEvent`
 * @property {Error[]} failures errors delivered to `onRunFailed`
 * @property {Error|undefined} error what `runAgent` rejected with
 * @property {string[]} printed console.warn / console.error output during the run
 * @property {object[]} messages the agent's messages after the run
 * @property {object} state the agent's state after the run (what the client applied)
 * @property {object[]} stateChanges the state passed to `onStateChanged`, once per change
 * @property {ProtoReplay|undefined} proto the same input replayed over protobuf (drivers with
 *   `proto` only, and only after a 200 `text/event-stream` answer)
 */

/**
 * @typedef {object} ProtoReplay
 * @property {object} input what was POSTed: the client's input with a fresh threadId and runId
 * @property {number} status HTTP status
 * @property {Headers} headers response headers
 * @property {Uint8Array} body the complete raw response body
 */

/**
 * Builds a driver for one client generation.
 *
 * @param {object} options
 * @param {string} options.name `v1` or `v0`, used in test names
 * @param {Function} options.HttpAgent that version's HttpAgent class
 * @param {(event: object) => object} options.parseEvent that version's `EventSchemas.parse`
 * @param {'1.0'|'0.0'} options.dialect `1.0` when the client sends `protocolVersion: "1.0"`
 * @param {Record<string, string[]>} [options.schemaDefaults] members the schema may add, by event type
 * @param {{mediaType: string, decode: (bytes: Uint8Array) => object}} [options.proto] that
 *   version's protobuf binding: when set, every run answered with a 200 event stream is replayed
 *   over protobuf (same input, same principal) and `assertStreamedRun` compares the two
 * @param {string} options.url agui-server's chat endpoint
 */
export function makeDriver({ name, HttpAgent, parseEvent, dialect, schemaDefaults = {}, proto, url }) {
  return {
    name,
    dialect,
    url,
    parseEvent,
    proto,
    schemaDefaults,
    /** How many streamed runs `assertStreamedRun` compared with their protobuf replay. */
    protoCompared: 0,

    /**
     * A fresh agent (new thread) whose requests carry `token`, if any.
     *
     * @param {{token?: string, initialState?: object}} [options] `initialState`: the agent's
     *   shared state before its first run (what the app starts with)
     */
    agent({ token, initialState } = {}) {
      const recorder = recordingFetch();
      const headers = token ? { Authorization: `Bearer ${token}` } : {};
      const config = { url, headers, fetch: recorder.fetch, threadId: `thread-${randomUUID()}` };
      if (initialState !== undefined) config.initialState = structuredClone(initialState);
      const agent = new HttpAgent(config);
      return { agent, recorder, token };
    },

    /**
     * Adds a user message (if `text`) and any extra messages, then runs the agent once (and,
     * with `proto`, replays the input over protobuf).
     *
     * @param {{agent: object, recorder: object, token?: string}} handle from `agent()`
     * @param {{text?: string, add?: object[], tools?: object[], protoToken?: string}} [step]
     *   `protoToken`: the replay's token when it is not the handle's, for a step whose replay by
     *   the same principal would see different server state (a deleted document)
     * @returns {Promise<RunRecord>}
     */
    async run(handle, { text, add = [], tools, protoToken } = {}) {
      const { agent, recorder } = handle;
      if (text !== undefined) agent.addMessage({ id: `user-${randomUUID()}`, role: 'user', content: text });
      for (const message of add) agent.addMessage(message);
      const clientEvents = [];
      const runErrorEvents = [];
      const failures = [];
      const stateChanges = [];
      const subscriber = {
        onEvent: ({ event }) => {
          clientEvents.push(structuredClone(event));
        },
        onRunErrorEvent: ({ event }) => {
          runErrorEvents.push(structuredClone(event));
        },
        onRunFailed: ({ error }) => {
          failures.push(error);
        },
        onStateChanged: ({ state }) => {
          stateChanges.push(structuredClone(state));
        },
      };
      const seen = recorder.exchanges.length;
      const params = tools ? { tools } : {};
      const { error, printed } = await withConsoleCapture(() => settleWithin(agent.runAgent(params, subscriber)));
      const exchange = recorder.exchanges[seen];
      const body = exchange?.done ? await exchange.done : undefined;
      const input = exchange?.request?.body ? JSON.parse(exchange.request.body) : undefined;
      const streamed = exchange?.status === 200 && /^text\/event-stream\b/.test(exchange.headers.get('content-type') ?? '');
      return {
        input,
        status: exchange?.status,
        headers: exchange?.headers,
        body,
        clientEvents,
        runErrorEvents,
        failures,
        error,
        printed,
        messages: structuredClone(agent.messages),
        state: structuredClone(agent.state),
        stateChanges,
        proto: proto && streamed ? await replayOverProto(url, proto.mediaType, protoToken ?? handle.token, input) : undefined,
      };
    },
  };
}

/**
 * POSTs `input` again asking for the protobuf binding. Only the threadId and runId are new: a
 * thread belongs to the principal that first ran on it, and the replay may use another one
 * (`protoToken`); `normaliseRun` numbers ids by first use, so the comparison is unaffected.
 */
async function replayOverProto(url, mediaType, token, input) {
  const replayed = { ...input, threadId: `thread-${randomUUID()}`, runId: `run-${randomUUID()}` };
  const headers = { 'content-type': 'application/json', accept: mediaType };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await settleWithin(nativeFetch(url, { method: 'POST', headers, body: JSON.stringify(replayed) }));
  const body = new Uint8Array(await settleWithin(response.arrayBuffer()));
  return { input: replayed, status: response.status, headers: response.headers, body };
}

function settleWithin(promise) {
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`run did not settle within ${RUN_DEADLINE_MS} ms`)), RUN_DEADLINE_MS);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
