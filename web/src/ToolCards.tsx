// Cards for the tools (the scripted and real models call the same ones): agui-server's backend
// tools (the caller's identity, their document list, one document, a deletion, a preference) and
// the app's frontend tool (the accent colour). CopilotKit renders a registered renderer in place
// of the tool call, with the TOOL_CALL_RESULT content as `result` once the call is complete. Each
// card renders from that result (src/toolResults.ts): a refusal or failure shows as one, never as
// what the call asked for.
import type { ReactToolCallRenderer } from "@copilotkit/react-core/v2";
import type { ReactElement } from "react";
import { cardModel, type CardModel, type CardTool, type Refusal } from "./toolResults";

interface RenderProps {
  name: string;
  status: string;
  result?: string;
}

function Pending({ name }: { name: string }): ReactElement {
  return (
    <div className="tool-card pending" data-testid="card-pending">
      Running <code>{name}</code>…
    </div>
  );
}

function RefusalCard({ name, refusal }: { name: string; refusal: Refusal }): ReactElement {
  return (
    <div
      className={`tool-card ${refusal.denied ? "denied" : "failed"}`}
      data-testid={refusal.denied ? "card-denied" : "card-error"}
      data-tool={name}
      data-code={refusal.code}
    >
      <strong>{refusal.title}</strong>: <code>{name}</code>
      <div className="muted">{refusal.message}</div>
    </div>
  );
}

/** A card for one model; `null` for a model that is another tool's. */
function Body({ name, model }: { name: string; model: CardModel }): ReactElement | null {
  switch (model.kind) {
    case "pending":
      return <Pending name={name} />;
    case "refused":
      return <RefusalCard name={name} refusal={model} />;
    case "unexpected":
      return (
        <div className="tool-card failed" data-testid="card-unexpected" data-tool={name}>
          <strong>Unexpected result</strong>: <code>{name}</code>
          <div className="muted">{model.text || "(empty)"}</div>
        </div>
      );
    case "identity":
      return (
        <div className="tool-card identity" data-testid="card-identity">
          <strong>{model.name}</strong>
          {model.email ? <div className="muted">{model.email}</div> : null}
          <div>
            {model.roles.length > 0 ? (
              model.roles.map((role) => (
                <span className="role" key={role}>
                  {role}
                </span>
              ))
            ) : (
              <span className="muted">no roles</span>
            )}
          </div>
        </div>
      );
    case "documents":
      return (
        <div className="tool-card documents" data-testid="card-documents">
          <strong>Your documents</strong>
          {model.documents.length === 0 ? (
            <div className="muted">none</div>
          ) : (
            <ul>
              {model.documents.map((doc) => (
                <li key={doc.id} data-doc-id={doc.id}>
                  #{doc.id} {doc.title}
                </li>
              ))}
            </ul>
          )}
        </div>
      );
    case "document":
      return (
        <div className="tool-card document" data-testid="card-document">
          <strong>
            #{model.id} {model.title}
          </strong>
          {model.body ? <div className="muted">{model.body}</div> : null}
        </div>
      );
    case "deleted":
      return (
        <div className="tool-card deleted" data-testid="card-deleted">
          <strong>Deleted</strong> document #{model.id}
        </div>
      );
    case "preference":
      return (
        <div className="tool-card preference" data-testid="card-preference" data-key={model.key}>
          <strong>Saved</strong> {model.key}: <code>{model.value}</code>
          <div className="muted">in this chat's shared state</div>
        </div>
      );
    case "accent":
      return (
        <div className="tool-card accent" data-testid="card-accent">
          <span className="swatch" style={{ background: model.color }} />
          <span>
            Accent colour changed to <code>{model.color}</code>
          </span>
        </div>
      );
  }
}

/** The renderer for `tool`'s calls: its card, from its result. */
export function toolCard(tool: CardTool) {
  return function ToolCard({ name, status, result }: RenderProps): ReactElement | null {
    return <Body name={name} model={cardModel(tool, status, result)} />;
  };
}

const BACKEND_TOOLS: CardTool[] = ["whoami", "list_my_documents", "get_document", "delete_document", "set_preference"];

/** Renderers for agui-server's backend tools (CopilotKitProvider `renderToolCalls`). */
export const backendToolRenderers: ReactToolCallRenderer<any>[] = BACKEND_TOOLS.map((name) => ({ name, render: toolCard(name) }));
