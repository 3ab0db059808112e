// What a tool card shows, read from the tool's RESULT (TOOL_CALL_RESULT content), never from the
// call's arguments: a call can be refused (not allowed, invalid arguments, not found) or fail, and
// then the card must say so instead of showing what was asked for. No React here, so the parsing
// is unit-tested on its own (e2e/app-units.test.mjs).
//
// The results are agui-server's built-in tools' (server/agent/src/tools/builtin.rs) and the app's
// frontend tool's (src/ChatTools.tsx). A refusal or failure is `{"error": <code>, "message":
// <text>}` (agui-server's `ToolError::to_result`; the frontend tool uses the same shape), or the
// text CopilotKit stores when a frontend handler throws (`Error: <message>`, @copilotkit/core 1.74).

type Json = Record<string, unknown>;

/** A refusal or failure, as the card shows it. */
export interface Refusal {
  kind: "refused";
  /** The stable code (`tool_not_allowed`, `not_found`, `invalid_color`, …). */
  code: string;
  /** A short heading: "Not allowed", "Not found", "Refused", … */
  title: string;
  /** The tool's own explanation. */
  message: string;
  /** The policy refused it (the principal may not use the tool). */
  denied: boolean;
}

/** What one tool card shows. */
export type CardModel =
  | { kind: "pending" }
  | Refusal
  | { kind: "identity"; name: string; email: string | null; roles: string[] }
  | { kind: "documents"; documents: { id: string; title: string }[] }
  | { kind: "document"; id: string; title: string; body: string | null }
  | { kind: "deleted"; id: string }
  | { kind: "preference"; key: string; value: string }
  | { kind: "accent"; color: string }
  /** A result the card does not recognise: shown as it is, never read as a success. */
  | { kind: "unexpected"; text: string };

/** The tools that have a card. */
export type CardTool = "whoami" | "list_my_documents" | "get_document" | "delete_document" | "set_preference" | "change_accent_color";

const TITLES: Record<string, string> = {
  tool_not_allowed: "Not allowed",
  not_found: "Not found",
  invalid_arguments: "Refused",
  invalid_color: "Refused",
  unknown_tool: "No such tool",
  tool_timeout: "Timed out",
};

/** The card for `tool`'s call in `status`, from its `result` (present once complete). */
export function cardModel(tool: CardTool, status: string, result: string | undefined): CardModel {
  if (status !== "complete") return { kind: "pending" };
  const text = result ?? "";
  if (text.startsWith("Error: ")) return refusal("tool_error", text.slice("Error: ".length));
  const data = parseObject(text);
  if (!data) return { kind: "unexpected", text };
  if (typeof data.error === "string") {
    return refusal(data.error, typeof data.message === "string" ? data.message : data.error);
  }
  return answer(tool, data) ?? { kind: "unexpected", text };
}

function refusal(code: string, message: string): Refusal {
  return { kind: "refused", code, title: TITLES[code] ?? "Tool failed", message, denied: code === "tool_not_allowed" };
}

function parseObject(text: string): Json | null {
  try {
    const value: unknown = JSON.parse(text);
    return value && typeof value === "object" && !Array.isArray(value) ? (value as Json) : null;
  } catch {
    return null;
  }
}

const str = (value: unknown): string | null => (typeof value === "string" ? value : null);
const id = (value: unknown): string | null => (typeof value === "number" || typeof value === "string" ? String(value) : null);

/** A success in the shape the tool documents, or null. */
function answer(tool: CardTool, data: Json): CardModel | null {
  switch (tool) {
    case "whoami": {
      const name = str(data.name) || str(data.email) || str(data.subject);
      if (!name) return null;
      const roles = Array.isArray(data.roles) ? data.roles.filter((r): r is string => typeof r === "string") : [];
      return { kind: "identity", name, email: str(data.email), roles };
    }
    case "list_my_documents": {
      if (!Array.isArray(data.documents)) return null;
      const documents = data.documents.flatMap((doc: unknown) => {
        const record = doc && typeof doc === "object" ? (doc as Json) : {};
        const docId = id(record.id);
        return docId === null ? [] : [{ id: docId, title: str(record.title) ?? "" }];
      });
      return { kind: "documents", documents };
    }
    case "get_document": {
      const docId = id(data.id);
      return docId === null ? null : { kind: "document", id: docId, title: str(data.title) ?? "", body: str(data.body) };
    }
    case "delete_document": {
      const docId = id(data.deleted);
      return docId === null ? null : { kind: "deleted", id: docId };
    }
    case "set_preference": {
      const key = str(data.preference);
      if (!key || data.value === undefined) return null;
      return { kind: "preference", key, value: typeof data.value === "string" ? data.value : JSON.stringify(data.value) };
    }
    case "change_accent_color": {
      const color = str(data.color);
      return color ? { kind: "accent", color } : null;
    }
  }
}

/** One row of the shared-state panel. */
export interface StateRow {
  /** `theme` for a preference, the top-level member's name otherwise. */
  key: string;
  value: string;
  /** Whether it is one of `/preferences` (what `set_preference` changes). */
  preference: boolean;
}

/**
 * The agent's shared state as rows: each `/preferences` member first (what `set_preference` set),
 * then any other top-level member as compact JSON. Anything that is not an object has no rows.
 */
export function stateRows(state: unknown): StateRow[] {
  if (!state || typeof state !== "object" || Array.isArray(state)) return [];
  const rows: StateRow[] = [];
  const { preferences, ...rest } = state as Json;
  if (preferences && typeof preferences === "object" && !Array.isArray(preferences)) {
    for (const [key, value] of Object.entries(preferences as Json)) {
      rows.push({ key, value: typeof value === "string" ? value : JSON.stringify(value), preference: true });
    }
  } else if (preferences !== undefined) {
    rest.preferences = preferences;
  }
  for (const [key, value] of Object.entries(rest)) {
    if (value === undefined) continue;
    rows.push({ key, value: typeof value === "string" ? value : JSON.stringify(value), preference: false });
  }
  return rows;
}
