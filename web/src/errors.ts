// How a run failure becomes a message for a person.
//
// CopilotKit's runtime answers the browser HTTP 200 even when agui-server refused the run: the
// refusal arrives as a RUN_ERROR whose message is "HTTP <status>: <agui-server's JSON body>", and
// the provider's onError receives it (shared/reference/copilotkit.md §3 "Non-2xx", "How the UI
// shows it"). The runtime hop's own refusals (web/server/guard.mjs) fail the request itself, which
// the client reports with the same "HTTP <status>: <body>" message. So the status is read from
// the message prefix and the reason from agui-server's `error` code.

/** What the page shows for a failed run. */
export type RunProblem =
  | { kind: "expired"; code: string }
  | { kind: "forbidden"; code: string; detail: string }
  | { kind: "other"; detail: string };

const HTTP_PREFIX = /^HTTP (\d{3}):\s*([\s\S]*)$/;

/** Classifies an error message from CopilotKit's onError. */
export function classifyRunError(message: string): RunProblem {
  const match = HTTP_PREFIX.exec(message.trim());
  if (!match) return { kind: "other", detail: shorten(message) };
  const status = Number(match[1]);
  const body = parseJson(match[2]);
  const code = typeof body?.error === "string" ? body.error : "";
  const text = typeof body?.message === "string" ? body.message : typeof body?.error_description === "string" ? body.error_description : "";
  if (status === 401) return { kind: "expired", code: code || "unauthorized" };
  if (status === 403) return { kind: "forbidden", code: code || "forbidden", detail: text };
  if (status === 429) return { kind: "other", detail: "Too many requests. Wait a moment and try again." };
  if (status >= 500) return { kind: "other", detail: `The assistant is unavailable right now (HTTP ${status}). Try again shortly.` };
  return { kind: "other", detail: text || `The request failed (HTTP ${status}${code ? `, ${code}` : ""}).` };
}

function parseJson(text: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(text);
    return value && typeof value === "object" ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

function shorten(text: string): string {
  const oneLine = text.replace(/\s+/g, " ").trim();
  return oneLine.length > 200 ? `${oneLine.slice(0, 197)}…` : oneLine || "Something went wrong.";
}
