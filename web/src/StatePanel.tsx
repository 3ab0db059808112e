// The chat's shared state (AG-UI agent state), as agui-server last sent it: the STATE_SNAPSHOT
// and STATE_DELTA events of the chat's runs, which CopilotKit applies to its agent (`agent.state`;
// `useAgent` with `UseAgentUpdate.OnStateChanged` re-renders on each change, @copilotkit/react-core
// 1.74). What `set_preference` ("set my theme to dark") changes is under `/preferences`.
import { useAgent, UseAgentUpdate } from "@copilotkit/react-core/v2";
import type { ReactElement } from "react";
import { stateRows } from "./toolResults";

const UPDATES = [UseAgentUpdate.OnStateChanged];

export function StatePanel(): ReactElement {
  const { agent } = useAgent({ updates: UPDATES });
  const rows = stateRows(agent.state);
  return (
    <section className="state-panel" data-testid="state-panel" aria-label="Shared state">
      <h2>Shared state</h2>
      {rows.length === 0 ? (
        <p className="muted small">Nothing yet. Try “Set my theme to dark”.</p>
      ) : (
        <dl>
          {rows.map((row) => (
            <div key={`${row.preference}:${row.key}`} data-testid="state-row" data-key={row.key}>
              <dt>{row.key}</dt>
              <dd>{row.value}</dd>
            </div>
          ))}
        </dl>
      )}
    </section>
  );
}
