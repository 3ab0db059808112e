// The page: sign-in (OpenID or GitHub, src/SignIn.tsx), who is signed in (as agui-server verified it), the user's threads and the
// chat, which mounts only when a user is signed in and forwards the access token through
// `properties`, as the product promises. Direct mode: agui-server reads it from the run's body;
// hop mode: the runtime hop turns it into an Authorization header (web/server/guard.mjs).
import {
  CopilotChat,
  CopilotChatView,
  CopilotKitProvider,
  HttpAgent,
  useAgent,
  useCopilotKit,
} from "@copilotkit/react-core/v2";
import { useCallback, useEffect, useMemo, useState, type ComponentProps, type ReactElement } from "react";
import type { AppConfig } from "./config";
import { classifyRunError, type RunProblem } from "./errors";
import { parseWhoAmI, type WhoAmI } from "./identity";
import { SignInPanel, useSession } from "./SignIn";
import { ChatTools } from "./ChatTools";
import { ThreadSidebar } from "./ThreadSidebar";
import { loadThreadId, newThreadId, saveThreadId } from "./threads";
import { backendToolRenderers } from "./ToolCards";
import { AssistantMessage, isRunErrorCode, NoAddMenu, NotesProvider, SendButton, UserMessage, useTranscriptNotes } from "./Transcript";

export function App({ config }: { config: AppConfig }): ReactElement {
  const { state, github } = useSession(config);
  const [problem, setProblem] = useState<RunProblem | null>(null);

  if (state.status === "loading") return <Shell><p className="muted">Loading…</p></Shell>;
  if (state.status === "signed-out") return <Shell><SignInPanel github={github} /></Shell>;
  const { session } = state;
  return (
    <Shell
      right={
        <>
          <Identity whoamiUrl={config.whoamiUrl} token={session.token} onProblem={setProblem} />
          <button type="button" className="secondary" data-testid="sign-out" onClick={session.signOut}>
            Sign out
          </button>
        </>
      }
    >
      <ProblemBanner problem={problem} onSignIn={session.signInAgain} onDismiss={() => setProblem(null)} />
      {/* Keyed by user: another user never inherits the previous one's thread or list. */}
      <Chat
        key={JSON.stringify([session.issuer, session.subject])}
        config={config}
        token={session.token}
        issuer={session.issuer}
        subject={session.subject}
        onProblem={setProblem}
        onSignInAgain={session.signInAgain}
      />
    </Shell>
  );
}

function Shell({ children, right }: { children: React.ReactNode; right?: React.ReactNode }): ReactElement {
  return (
    <div className="page">
      <header className="topbar">
        <h1>
          <span className="dot" /> agui-server <span className="muted">· CopilotKit sample</span>
        </h1>
        <div className="topbar-right">{right}</div>
      </header>
      <main className="content">{children}</main>
    </div>
  );
}

interface ChatProps {
  config: AppConfig;
  token: string;
  issuer: string;
  subject: string;
  onProblem: (p: RunProblem | null) => void;
  onSignInAgain: () => void;
}

function Chat({ config, token, issuer, subject, onProblem, onSignInAgain }: ChatProps): ReactElement {
  // The token travels as `properties.authorization` → RunAgentInput.forwardedProps.authorization.
  const properties = useMemo(() => ({ authorization: token }), [token]);
  // A run's failure is shown in the transcript, under the message that failed (StoppableChat);
  // the banner is for the rest: the runtime unreachable, a thread that cannot be replayed.
  const onError = useCallback(
    ({ error, code }: { error: Error; code: string }) => {
      if (!isRunErrorCode(code)) onProblem(classifyRunError(error?.message ?? String(error)));
    },
    [onProblem],
  );
  // The thread the chat shows, kept per user: a reload comes back to it, and CopilotChat's
  // `connect` replays it from agui-server (or, in hop mode, from the hop's memory).
  const [threadId, setThreadId] = useState(() => loadThreadId(window.localStorage, issuer, subject) ?? newThreadId());
  useEffect(() => saveThreadId(window.localStorage, issuer, subject, threadId), [issuer, subject, threadId]);
  const startNewChat = useCallback(() => setThreadId(newThreadId()), []);
  return (
    <CopilotKitProvider
      runtimeUrl={config.runtimeUrl}
      properties={properties}
      onError={onError}
      renderToolCalls={backendToolRenderers}
      showDevConsole={false}
    >
      <ChatTools />
      <div className="workspace">
        <ThreadSidebar
          threadsUrl={config.threadsUrl}
          token={token}
          activeId={threadId}
          onSelect={setThreadId}
          onNewChat={startNewChat}
        />
        <StoppableChat token={token} threadId={threadId} onProblem={onProblem} onSignInAgain={onSignInAgain} />
      </div>
    </CopilotKitProvider>
  );
}

/**
 * CopilotKit's chat, whose Stop button really stops the run on the server.
 *
 * CopilotKit's own Stop (`copilotkit.stopAgent` → `ProxiedCopilotRuntimeAgent.abortRun`, 1.74)
 * POSTs `/agent/default/stop/<thread>` with the agent's headers and a `{runId}` body, never
 * `properties`. The app sends its token only through `properties`, so that request carried no
 * credential, the hop refused it (401) and agui-server's run went on to the end. Here the Stop
 * button runs the very same `stopAgent` (it also stops in-flight frontend tools and any follow-up
 * run), with the signed-in user's token added to the agent's headers for that one synchronous
 * call: `abortRun` builds its request before returning, and the previous headers are put back
 * straight after, so runs still carry the token only through `properties` (the bridge the tests
 * prove). agui-server (direct mode) or the hop (web/server/guard.mjs) verifies that token and
 * checks the thread is the caller's.
 *
 * The container says whether CopilotKit has reached the runtime and whether a run or a connect
 * is in progress (`data-runtime`, `data-running`): what a person sees as the chat being ready.
 *
 * The transcript's notes (src/Transcript.tsx): a failed run's error under its message with
 * Retry, and "Stopped" under a reply the Stop button cut off.
 */
function StoppableChat({
  token,
  threadId,
  onProblem,
  onSignInAgain,
}: {
  token: string;
  threadId: string;
  onProblem: (p: RunProblem | null) => void;
  onSignInAgain: () => void;
}): ReactElement {
  const { agent } = useAgent();
  const { copilotkit } = useCopilotKit();
  const runtime = useRuntimeStatus();
  const runAgent = useCallback((a: typeof agent) => copilotkit.runAgent({ agent: a }), [copilotkit]);
  const { notes, reportRunError, markStopped } = useTranscriptNotes(agent, runAgent, onSignInAgain);
  // The run errors of this chat's agent (what CopilotChat's own onError would get).
  useEffect(() => {
    const subscription = copilotkit.subscribe({
      onError: ({ error, code, context }) => {
        if (!isRunErrorCode(code) || (context?.agentId && context.agentId !== agent.agentId)) return;
        const message = error?.message ?? String(error);
        // No message to put it under (nothing was sent in this chat): the banner says it.
        if (!reportRunError(message)) onProblem(classifyRunError(message));
      },
    });
    return () => subscription.unsubscribe();
  }, [copilotkit, agent, reportRunError, onProblem]);
  const onStop = useCallback(() => {
    if (!agent.isRunning) return; // CopilotChat offers its own Stop only while a run is going on
    markStopped();
    if (!(agent instanceof HttpAgent)) {
      copilotkit.stopAgent({ agent });
      return;
    }
    const previous = agent.headers;
    agent.headers = { ...previous, Authorization: `Bearer ${token}` };
    try {
      copilotkit.stopAgent({ agent });
    } finally {
      agent.headers = previous;
    }
  }, [agent, copilotkit, token, markStopped]);
  return (
    <div className="chat" data-testid="chat" data-thread-id={threadId} data-runtime={runtime} data-running={String(agent.isRunning)}>
      <NotesProvider value={notes}>
        <CopilotChat
          threadId={threadId}
          labels={{ chatInputPlaceholder: "Ask something…" }}
          messageView={{ assistantMessage: AssistantMessage, userMessage: UserMessage }}
          input={{ sendButton: SendButton, addMenuButton: NoAddMenu }}
          chatView={ChatView}
          onStop={onStop}
        />
      </NotesProvider>
    </div>
  );
}

/**
 * CopilotKit's chat view, wrapped (without a box of its own: `display: contents`) to say whether
 * the chat is still connecting to its thread (replaying it): until then a message would wait.
 */
function ChatView(props: ComponentProps<typeof CopilotChatView>): ReactElement {
  return (
    <div className="chat-view" data-testid="chat-view" data-connecting={String(Boolean(props.isConnecting))}>
      <CopilotChatView {...props} />
    </div>
  );
}

/** CopilotKit's connection to the runtime (`/info`): `connected`, `connecting`, `error`, … */
function useRuntimeStatus(): string {
  const { copilotkit } = useCopilotKit();
  const [status, setStatus] = useState<string>(copilotkit.runtimeConnectionStatus);
  useEffect(() => {
    setStatus(copilotkit.runtimeConnectionStatus);
    const subscription = copilotkit.subscribe({
      onRuntimeConnectionStatusChanged: () => setStatus(copilotkit.runtimeConnectionStatus),
    });
    return () => subscription.unsubscribe();
  }, [copilotkit]);
  return status;
}

/** Name, email and roles as agui-server verified them (not as the ID token claims them). */
function Identity({ whoamiUrl, token, onProblem }: { whoamiUrl: string; token: string; onProblem: (p: RunProblem | null) => void }): ReactElement {
  const [who, setWho] = useState<WhoAmI | null>(null);
  const [failure, setFailure] = useState<string | null>(null);
  useEffect(() => {
    const abort = new AbortController();
    fetch(whoamiUrl, { headers: { authorization: `Bearer ${token}` }, cache: "no-store", signal: abort.signal })
      .then(async (response) => {
        const answer = parseWhoAmI(response.status, await response.text());
        if (answer.ok) {
          setWho(answer.who);
          setFailure(null);
        } else {
          const problem = classifyRunError(answer.message);
          if (problem.kind === "expired") onProblem(problem);
          setFailure(`not verified (HTTP ${answer.status})`);
        }
      })
      .catch((error: Error) => {
        if (error.name !== "AbortError") setFailure("agui-server is not reachable");
      });
    return () => abort.abort();
  }, [whoamiUrl, token, onProblem]);

  if (failure) return <div className="identity muted" data-testid="identity">{failure}</div>;
  if (!who) return <div className="identity muted" data-testid="identity">verifying…</div>;
  return (
    <div className="identity" data-testid="identity" data-subject={who.subject}>
      <div>
        <strong data-testid="identity-name">{who.name ?? who.subject}</strong>{" "}
        <span className="muted" data-testid="identity-email">{who.email ?? ""}</span>
      </div>
      <div data-testid="identity-roles">
        {who.roles.length > 0 ? who.roles.map((role) => <span className="role" key={role}>{role}</span>) : <span className="muted">no roles</span>}
      </div>
    </div>
  );
}

function ProblemBanner({ problem, onSignIn, onDismiss }: { problem: RunProblem | null; onSignIn: () => void; onDismiss: () => void }): ReactElement | null {
  if (!problem) return null;
  if (problem.kind === "expired") {
    return (
      <div className="banner warn" role="alert" data-testid="problem-expired">
        Your session expired. Sign in again to continue.
        <button type="button" data-testid="sign-in-again" onClick={onSignIn}>Sign in again</button>
      </div>
    );
  }
  if (problem.kind === "forbidden") {
    return (
      <div className="banner error" role="alert" data-testid="problem-forbidden">
        You are not allowed to do that ({problem.code}){problem.detail ? `: ${problem.detail}` : "."}
        <button type="button" className="secondary" onClick={onDismiss}>Dismiss</button>
      </div>
    );
  }
  return (
    <div className="banner error" role="alert" data-testid="problem-other">
      {problem.detail}
      <button type="button" className="secondary" onClick={onDismiss}>Dismiss</button>
    </div>
  );
}
