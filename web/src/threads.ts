// The user's threads: which one the chat shows (kept per user in localStorage, so a reload comes
// back to it and CopilotKit's `connect` replays it) and the list agui-server keeps of them
// (`GET {runtime}/threads`, only the caller's, newest first), parsed with zod.
import { z } from "zod";

/** One thread as agui-server's `GET /copilotkit/threads` lists it (CopilotKit's ThreadRecord). */
export const ThreadRecordSchema = z.object({
  id: z.string().min(1),
  /** The title agui-server took from the thread's first user message; null before it has one. */
  name: z.string().nullish(),
  createdAt: z.string(),
  updatedAt: z.string(),
  lastRunAt: z.string().nullish(),
});

/** The list answer. */
export const ThreadListSchema = z.object({
  threads: z.array(ThreadRecordSchema),
  nextCursor: z.string().nullish(),
});

export type ThreadRecord = z.infer<typeof ThreadRecordSchema>;

/** What a thread id the app keeps or accepts may look like (what `crypto.randomUUID()` mints, and other plain ids). */
const THREAD_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The localStorage key of a user's current thread: per issuer and subject (a subject is unique only per issuer). */
export function threadStorageKey(issuer: string, subject: string): string {
  return `agui.thread:${JSON.stringify([issuer, subject])}`;
}

/** The user's current thread id, if one is kept and well-formed. */
export function loadThreadId(storage: Pick<Storage, "getItem">, issuer: string, subject: string): string | undefined {
  let value: string | null = null;
  try {
    value = storage.getItem(threadStorageKey(issuer, subject));
  } catch {
    return undefined; // storage disabled: a new chat per load
  }
  return value !== null && THREAD_ID.test(value) ? value : undefined;
}

/** Keeps the user's current thread id (best effort: without storage a reload starts a new chat). */
export function saveThreadId(storage: Pick<Storage, "setItem">, issuer: string, subject: string, threadId: string): void {
  try {
    storage.setItem(threadStorageKey(issuer, subject), threadId);
  } catch {
    /* storage full or disabled */
  }
}

/** A fresh thread id. */
export function newThreadId(): string {
  return crypto.randomUUID();
}

/**
 * The signed-in user's threads from agui-server, newest first (the server's order). A refusal
 * throws `HTTP <status>: <body>` (the shape classifyRunError reads); an answer that is not a
 * thread list throws too.
 */
export async function fetchThreads(url: string, token: string, signal?: AbortSignal): Promise<ThreadRecord[]> {
  const response = await fetch(url, { headers: { authorization: `Bearer ${token}` }, cache: "no-store", signal });
  const text = await response.text();
  if (!response.ok) throw new Error(`HTTP ${response.status}: ${text}`);
  return ThreadListSchema.parse(JSON.parse(text)).threads;
}
