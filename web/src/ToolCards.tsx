// Cards for agui-server's backend tools (the scripted and real models call the same tools): the
// caller's identity, their document list, one document, a deletion, and a refusal. CopilotKit
// renders a registered renderer in place of the tool call, with the TOOL_CALL_RESULT content as
// `result` once the call is complete.
import type { ReactToolCallRenderer } from "@copilotkit/react-core/v2";
import type { ReactElement } from "react";

type Json = Record<string, unknown>;

interface RenderProps {
  name: string;
  status: string;
  result?: string;
}

function parse(result: string | undefined): Json | null {
  if (!result) return null;
  try {
    const value: unknown = JSON.parse(result);
    return value && typeof value === "object" ? (value as Json) : { value };
  } catch {
    return { value: result };
  }
}

function Pending({ name }: { name: string }): ReactElement {
  return (
    <div className="tool-card pending" data-testid="card-pending">
      Running <code>{name}</code>…
    </div>
  );
}

function Refusal({ name, data }: { name: string; data: Json }): ReactElement {
  const denied = data.error === "tool_not_allowed";
  return (
    <div className={`tool-card ${denied ? "denied" : "failed"}`} data-testid={denied ? "card-denied" : "card-error"}>
      <strong>{denied ? "Not allowed" : "Tool failed"}</strong>: <code>{name}</code>
      <div className="muted">{String(data.message ?? data.error)}</div>
    </div>
  );
}

function IdentityCard({ data }: { data: Json }): ReactElement {
  const roles = Array.isArray(data.roles) ? (data.roles as unknown[]).map(String) : [];
  return (
    <div className="tool-card identity" data-testid="card-identity">
      <strong>{String(data.name ?? data.subject ?? "unknown")}</strong>
      {data.email ? <div className="muted">{String(data.email)}</div> : null}
      <div>
        {roles.length > 0 ? roles.map((role) => (
          <span className="role" key={role}>
            {role}
          </span>
        )) : <span className="muted">no roles</span>}
      </div>
    </div>
  );
}

function DocumentsCard({ data }: { data: Json }): ReactElement {
  const documents = Array.isArray(data.documents) ? (data.documents as Json[]) : [];
  return (
    <div className="tool-card documents" data-testid="card-documents">
      <strong>Your documents</strong>
      {documents.length === 0 ? (
        <div className="muted">none</div>
      ) : (
        <ul>
          {documents.map((doc) => (
            <li key={String(doc.id)} data-doc-id={String(doc.id)}>
              #{String(doc.id)} {String(doc.title ?? "")}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

function DocumentCard({ data }: { data: Json }): ReactElement {
  return (
    <div className="tool-card document" data-testid="card-document">
      <strong>
        #{String(data.id)} {String(data.title ?? "")}
      </strong>
      {data.body ? <div className="muted">{String(data.body)}</div> : null}
    </div>
  );
}

function DeletedCard({ data }: { data: Json }): ReactElement {
  const id = data.id ?? data.deleted ?? data.document_id;
  return (
    <div className="tool-card deleted" data-testid="card-deleted">
      <strong>Deleted</strong> document {id !== undefined ? `#${String(id)}` : ""}
    </div>
  );
}

function card(Body: (props: { data: Json }) => ReactElement) {
  return function ToolCard({ name, status, result }: RenderProps): ReactElement {
    if (status !== "complete") return <Pending name={name} />;
    const data = parse(result) ?? {};
    if (typeof data.error === "string") return <Refusal name={name} data={data} />;
    return <Body data={data} />;
  };
}

/** Renderers for agui-server's document and identity tools (CopilotKitProvider `renderToolCalls`). */
export const backendToolRenderers: ReactToolCallRenderer<any>[] = [
  { name: "whoami", render: card(IdentityCard) },
  { name: "list_my_documents", render: card(DocumentsCard) },
  { name: "get_document", render: card(DocumentCard) },
  { name: "delete_document", render: card(DeletedCard) },
];
