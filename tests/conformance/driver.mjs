// The client driver shared by both suites: proves nothing by itself; wraps one version's official
// `HttpAgent` (injected by the suite, so this file imports no @ag-ui package) so a scenario can
// run it exactly as an app would (`addMessage`, `runAgent({tools}, subscriber)`) and get back
// everything needed to judge the run: what the client sent, every event it delivered, the raw
// bytes the server sent, errors it reported and anything it printed.

import { randomUUID } from 'node:crypto';

import { recordingFetch, withConsoleCapture } from './wire.mjs';

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
 * @param {(bytes: Uint8Array) => object} [options.decodeProto] that version's protobuf decoder
 * @param {string} options.url agui-server's chat endpoint
 */
export function makeDriver({ name, HttpAgent, parseEvent, dialect, schemaDefaults = {}, decodeProto, url }) {
  return {
    name,
    dialect,
    url,
    parseEvent,
    decodeProto,
    schemaDefaults,

    /**
     * A fresh agent (new thread) whose requests carry `token`, if any.
     *
     * @param {{token?: string}} [options]
     */
    agent({ token } = {}) {
      const recorder = recordingFetch();
      const headers = token ? { Authorization: `Bearer ${token}` } : {};
      const agent = new HttpAgent({ url, headers, fetch: recorder.fetch, threadId: `thread-${randomUUID()}` });
      return { agent, recorder };
    },

    /**
     * Adds a user message (if `text`) and any extra messages, then runs the agent once.
     *
     * @param {{agent: object, recorder: object}} handle from `agent()`
     * @param {{text?: string, add?: object[], tools?: object[]}} [step]
     * @returns {Promise<RunRecord>}
     */
    async run(handle, { text, add = [], tools } = {}) {
      const { agent, recorder } = handle;
      if (text !== undefined) agent.addMessage({ id: `user-${randomUUID()}`, role: 'user', content: text });
      for (const message of add) agent.addMessage(message);
      const clientEvents = [];
      const runErrorEvents = [];
      const failures = [];
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
      };
      const seen = recorder.exchanges.length;
      const params = tools ? { tools } : {};
      const { error, printed } = await withConsoleCapture(() => settleWithin(agent.runAgent(params, subscriber)));
      const exchange = recorder.exchanges[seen];
      const body = exchange?.done ? await exchange.done : undefined;
      return {
        input: exchange?.request?.body ? JSON.parse(exchange.request.body) : undefined,
        status: exchange?.status,
        headers: exchange?.headers,
        body,
        clientEvents,
        runErrorEvents,
        failures,
        error,
        printed,
        messages: structuredClone(agent.messages),
      };
    },
  };
}

function settleWithin(promise) {
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`run did not settle within ${RUN_DEADLINE_MS} ms`)), RUN_DEADLINE_MS);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
