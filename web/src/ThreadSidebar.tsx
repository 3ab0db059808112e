// The signed-in user's threads, newest first, from agui-server's store (`GET {runtime}/threads`,
// which lists only the caller's), to switch between them; and "New chat". Lives inside the
// CopilotKit provider: it refreshes whenever a run (or a connect) of the chat ends, so a new
// thread appears once its first run has started.
import { useAgent } from "@copilotkit/react-core/v2";
import { useEffect, useState, type ReactElement } from "react";
import { classifyRunError } from "./errors";
import { StatePanel } from "./StatePanel";
import { fetchThreads, type ThreadRecord } from "./threads";

interface ThreadSidebarProps {
  threadsUrl: string;
  token: string;
  /** The thread the chat shows. */
  activeId: string;
  onSelect: (threadId: string) => void;
  onNewChat: () => void;
}

export function ThreadSidebar({ threadsUrl, token, activeId, onSelect, onNewChat }: ThreadSidebarProps): ReactElement {
  const { agent } = useAgent();
  const running = agent.isRunning;
  const [threads, setThreads] = useState<ThreadRecord[] | null>(null);
  const [failure, setFailure] = useState<string | null>(null);

  useEffect(() => {
    if (running) return; // refreshed when the run (or the connect) ends
    const abort = new AbortController();
    fetchThreads(threadsUrl, token, abort.signal)
      .then((list) => {
        setThreads(list);
        setFailure(null);
      })
      .catch((error: Error) => {
        if (error.name === "AbortError") return;
        const problem = classifyRunError(error.message);
        setFailure(problem.kind === "expired" ? "Sign in again to see your chats." : "Your chats could not be loaded.");
      });
    return () => abort.abort();
  }, [threadsUrl, token, running, activeId]);

  const listed = threads?.some((thread) => thread.id === activeId) ?? false;
  return (
    <aside className="threads" data-testid="threads" data-loaded={String(threads !== null)}>
      <button type="button" className="secondary new-chat" data-testid="new-chat" onClick={onNewChat}>
        New chat
      </button>
      {failure ? <p className="muted small" role="status">{failure}</p> : null}
      <ul>
        {/* The current chat before its first run: agui-server does not know it yet. */}
        {threads !== null && !listed ? (
          <li>
            <button type="button" className="thread" aria-current="true" data-testid="thread-new" data-thread-id={activeId}>
              <span className="thread-title">New chat</span>
            </button>
          </li>
        ) : null}
        {(threads ?? []).map((thread) => (
          <li key={thread.id}>
            <button
              type="button"
              className="thread"
              data-testid="thread"
              data-thread-id={thread.id}
              aria-current={thread.id === activeId ? "true" : undefined}
              title={thread.name ?? undefined}
              onClick={() => {
                if (thread.id !== activeId) onSelect(thread.id);
              }}
            >
              <span className="thread-title">{thread.name?.trim() || "Untitled chat"}</span>
              <span className="thread-when muted">{when(thread.lastRunAt ?? thread.updatedAt)}</span>
            </button>
          </li>
        ))}
      </ul>
      {/* This chat's shared state (agent state): what "set my theme to dark" changed. */}
      <StatePanel />
    </aside>
  );
}

/** A short local time for a thread's last activity ("14:05", or "2 Dec" for another day). */
function when(iso: string): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const today = new Date().toDateString() === date.toDateString();
  return today
    ? date.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" })
    : date.toLocaleDateString(undefined, { day: "numeric", month: "short" });
}
