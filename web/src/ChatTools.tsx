// What the chat offers besides typing: the frontend tool (the accent colour, which runs in the
// browser) and the suggestions. Must live inside the CopilotKit provider.
import { useConfigureSuggestions, useFrontendTool } from "@copilotkit/react-core/v2";
import { z } from "zod";
import { toolCard } from "./ToolCards";

/**
 * Suggestions that match the scripted model's intents (DESIGN "The scripted model"). Offered
 * before the first message and after every reply (`available: "always"`: CopilotKit 1.74 reloads
 * static suggestions when a run ends, and hides them while one is going on).
 */
export const SUGGESTIONS = [
  "Who am I?",
  "List my documents",
  "Delete document 2",
  "Change the accent colour to teal",
  "Set my theme to dark",
  "What can you do?",
].map((text) => ({ title: text, message: text }));

const renderAccent = toolCard("change_accent_color");

/** The frontend tool and the suggestions. */
export function ChatTools(): null {
  useFrontendTool({
    name: "change_accent_color",
    description: "Change the page's accent colour. Use when the user asks for a different colour.",
    parameters: z.object({ color: z.string().describe("A CSS colour: a name such as teal, or #rrggbb") }),
    // Runs in the browser; its return value is the tool result the agent continues with, in the
    // shape of agui-server's tool results: the answer, or `{error, message}` when refused.
    handler: async ({ color }) => {
      if (!CSS.supports("color", color)) {
        return { error: "invalid_color", message: `"${color}" is not a CSS colour; the accent is unchanged` };
      }
      // `--app-accent`, not `--accent`: CopilotKit's stylesheet defines its own `--accent` (a
      // near-white) inside the chat, which would hide the cards' role pills and borders.
      document.documentElement.style.setProperty("--app-accent", color);
      return { color };
    },
    render: renderAccent,
  });
  useConfigureSuggestions({ suggestions: SUGGESTIONS, available: "always" });
  return null;
}
