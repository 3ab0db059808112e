// What the transcript says beside CopilotKit's own messages: a failed run's error under the
// message that failed (with Retry, or "Sign in again" for an expired session), cleared once a
// later run succeeds; and a "Stopped" marker under a reply the user cut off, live and when the
// thread is replayed after a reload (agui-server replays a stopped run to CopilotKit's 0.0.x
// client as `RUN_ERROR` code `abort`, server/app/src/history/replay.rs `adapt_replayed`).
//
// The notes are a React context read by the message slots (UserMessage, AssistantMessage), so
// they render inside CopilotKit's message list, under the message they belong to.
import {
  CopilotChatAssistantMessage,
  CopilotChatInput,
  CopilotChatUserMessage,
  type CopilotKitCoreErrorCode,
} from "@copilotkit/react-core/v2";
import type { AbstractAgent, Message } from "@ag-ui/client";
import {
  createContext,
  useCallback,
  useContext,
  useEffect,
  useMemo,
  useRef,
  useState,
  type ComponentProps,
  type ReactElement,
} from "react";
import { classifyRunError, type RunProblem } from "./errors";
import { showJsonLiterally } from "./markdown";

/** A run that failed: the user message it answered and what went wrong. */
export interface RunFailure {
  messageId: string;
  problem: RunProblem;
}

/** The transcript's notes, given to the message slots by `NotesProvider`. */
export interface Notes {
  failure: RunFailure | null;
  /** Messages after which a reply was cut off by Stop (the last message of that run). */
  stopped: ReadonlySet<string>;
  retry: () => void;
  signInAgain: () => void;
}

const NotesContext = createContext<Notes>({ failure: null, stopped: new Set(), retry: () => {}, signInAgain: () => {} });

/** The error codes CopilotKit gives a failed run (as opposed to a failed connect or `/info`). */
const RUN_ERROR_CODES: ReadonlySet<string> = new Set<string>([
  "agent_run_failed",
  "agent_run_failed_event",
  "agent_run_error_event",
  "agent_thread_locked",
]);

/** Whether CopilotKit's error `code` is a run's failure (shown in the transcript). */
export function isRunErrorCode(code: CopilotKitCoreErrorCode | string): boolean {
  return RUN_ERROR_CODES.has(code);
}

/** The codes a stopped run ends with: `abort` (0.0.x replay, @ag-ui/client's own), `cancelled`. */
const STOPPED_CODES: ReadonlySet<string> = new Set(["abort", "cancelled", "STOPPED"]);

/** The id of the last user message in `messages`, if any. */
function lastUserMessageId(messages: readonly Message[]): string | undefined {
  for (let i = messages.length - 1; i >= 0; i -= 1) if (messages[i].role === "user") return messages[i].id;
  return undefined;
}

/** Puts `notes` where the message slots read them (around CopilotChat). */
export const NotesProvider = NotesContext.Provider;

interface TranscriptNotes {
  notes: Notes;
  /** A run error from CopilotChat's onError: shown under the failed message; false if there is none. */
  reportRunError: (message: string) => boolean;
  /** Call when the user presses Stop: the reply so far is marked "Stopped". */
  markStopped: () => void;
}

/**
 * The transcript's notes for `agent`: follows its runs (a run that finishes clears the error; a
 * replayed stopped run is marked) and offers Retry, which drops whatever followed the failed
 * message and runs the agent again on it.
 */
export function useTranscriptNotes(
  agent: AbstractAgent,
  runAgent: (agent: AbstractAgent) => Promise<unknown>,
  signInAgain: () => void,
): TranscriptNotes {
  const [failure, setFailure] = useState<RunFailure | null>(null);
  const [stopped, setStopped] = useState<ReadonlySet<string>>(() => new Set());
  // Whether the current run has already reported an error: CopilotKit reports one failure up to
  // three times (the RUN_ERROR event, the failed run, the rejected promise); the first says most.
  const reported = useRef(false);
  // The user message the failing run answered, from its RUN_ERROR (right also in a replay, where
  // later messages may follow); a run that fails without one (the request itself failed) answered
  // the last.
  const failedMessage = useRef<string | undefined>(undefined);

  const mark = useCallback((messageId: string | undefined) => {
    if (!messageId) return;
    setStopped((previous) => (previous.has(messageId) ? previous : new Set(previous).add(messageId)));
  }, []);

  useEffect(() => {
    // A stopped run's end can arrive before its text: the hop's replay (CopilotKit's runtime)
    // sends RUN_ERROR `abort` straight after RUN_STARTED. So the run's last message is marked
    // when the next run starts or the replay ends.
    let stoppedRun = false;
    const markStoppedRun = (messages: readonly Message[]) => {
      if (stoppedRun) mark(messages.at(-1)?.id);
      stoppedRun = false;
    };
    const subscription = agent.subscribe({
      onRunInitialized: () => {
        reported.current = false;
        failedMessage.current = undefined;
      },
      // Each run of a replay starts with its own RUN_STARTED.
      onRunStartedEvent: ({ messages }) => {
        markStoppedRun(messages);
        reported.current = false;
        failedMessage.current = undefined;
      },
      onRunFinishedEvent: () => {
        if (!reported.current) setFailure(null);
      },
      onRunErrorEvent: ({ event, messages }) => {
        if (event.code && STOPPED_CODES.has(event.code)) stoppedRun = true;
        else failedMessage.current = lastUserMessageId(messages);
      },
      onRunFinalized: ({ messages }) => markStoppedRun(messages),
    });
    return () => subscription.unsubscribe();
  }, [agent, mark]);

  const reportRunError = useCallback(
    (message: string) => {
      const messageId = failedMessage.current ?? lastUserMessageId(agent.messages);
      if (!messageId) return false;
      if (!reported.current) {
        reported.current = true;
        setFailure({ messageId, problem: classifyRunError(message) });
      }
      return true;
    },
    [agent],
  );

  const markStopped = useCallback(() => mark(agent.messages.at(-1)?.id), [agent, mark]);

  const retry = useCallback(() => {
    if (!failure || agent.isRunning) return;
    const index = agent.messages.findIndex((m) => m.id === failure.messageId);
    if (index < 0) return;
    agent.setMessages(agent.messages.slice(0, index + 1));
    setFailure(null);
    void runAgent(agent).catch(() => {}); // a new failure is reported through onError
  }, [agent, failure, runAgent]);

  const notes = useMemo(() => ({ failure, stopped, retry, signInAgain }), [failure, stopped, retry, signInAgain]);
  return { notes, reportRunError, markStopped };
}

/** Under a user message: the error of the run that answered it, if it failed. */
function UserMessageView(props: ComponentProps<typeof CopilotChatUserMessage>): ReactElement {
  const { failure, stopped } = useContext(NotesContext);
  return (
    <>
      <CopilotChatUserMessage {...props} />
      {stopped.has(props.message.id) ? <StoppedMarker /> : null}
      {failure?.messageId === props.message.id ? <RunErrorNotice problem={failure.problem} /> : null}
    </>
  );
}

/**
 * An assistant message with the app's markdown (quoted JSON shown literally, src/markdown.ts),
 * nothing at all while it is still empty (a failed run left a blank reply), and the "Stopped"
 * marker when it was cut off.
 */
function AssistantMessageView(props: ComponentProps<typeof CopilotChatAssistantMessage>): ReactElement | null {
  const { stopped } = useContext(NotesContext);
  const { message } = props;
  const empty = !(typeof message.content === "string" ? message.content.trim() : message.content) && !message.toolCalls?.length;
  if (empty) return stopped.has(message.id) ? <StoppedMarker /> : null;
  return (
    <>
      <CopilotChatAssistantMessage {...props} markdownRenderer={AssistantMarkdown} />
      {stopped.has(message.id) ? <StoppedMarker /> : null}
    </>
  );
}

// The slots take a component with CopilotKit's static parts (MarkdownRenderer, Toolbar, …).
export const UserMessage = Object.assign(UserMessageView, CopilotChatUserMessage);
export const AssistantMessage = Object.assign(AssistantMessageView, CopilotChatAssistantMessage);

function AssistantMarkdown({ content, ...rest }: ComponentProps<typeof CopilotChatAssistantMessage.MarkdownRenderer>): ReactElement {
  return <CopilotChatAssistantMessage.MarkdownRenderer {...rest} content={showJsonLiterally(content ?? "")} />;
}

function StoppedMarker(): ReactElement {
  return (
    <div className="stopped-marker" data-testid="stopped-marker" role="note">
      Stopped
    </div>
  );
}

/** A failed run's message, where it happened. */
function RunErrorNotice({ problem }: { problem: RunProblem }): ReactElement {
  const { retry, signInAgain } = useContext(NotesContext);
  if (problem.kind === "expired") {
    return (
      <div className="run-error warn" role="alert" data-testid="run-error" data-kind="expired">
        <span>Your session expired. Sign in again to continue.</span>
        <button type="button" data-testid="sign-in-again" onClick={signInAgain}>
          Sign in again
        </button>
      </div>
    );
  }
  const text =
    problem.kind === "forbidden"
      ? `You are not allowed to do that (${problem.code})${problem.detail ? `: ${problem.detail}` : "."}`
      : problem.detail;
  return (
    <div className="run-error" role="alert" data-testid="run-error" data-kind={problem.kind}>
      <span>{text}</span>
      <button type="button" className="secondary" data-testid="retry" onClick={retry}>
        Retry
      </button>
    </div>
  );
}

/** The composer's send button, named for what it does now ("Send message" or "Stop"). */
export function SendButton(props: ComponentProps<typeof CopilotChatInput.SendButton>): ReactElement {
  // CopilotChatInput passes the Stop icon as children while a run can be stopped.
  const label = props.children ? "Stop" : "Send message";
  return <CopilotChatInput.SendButton {...props} aria-label={label} title={label} />;
}

/** No "+" menu: the app offers no attachments or tools menu, and a control that is always disabled says nothing. */
export function NoAddMenu(): null {
  return null;
}
