// The app's runtime settings, served by web/server as /config.json so the same build works for
// `make run`, the tests and any deployment (nothing here is secret: the app is a public client),
// and for both ways of reaching agui-server (web/README.md "Two modes").
import { z } from "zod";

/** What web/server's /config.json holds; checked, not cast, so a wrong server fails clearly. */
export const AppConfigSchema = z.object({
  /** The OpenID provider (issuer URL). */
  authority: z.string().url(),
  /** The app's public client id at that provider. */
  clientId: z.string().min(1),
  /** Scopes to request: OIDC identity scopes plus agui-server's. */
  scope: z.string(),
  /** oidc-client-ts automatic silent renew (off in the token-expiry test). */
  silentRenew: z.boolean(),
  /** `direct`: agui-server is the CopilotKit runtime; `hop`: CopilotKit's Node runtime in web/server. */
  mode: z.enum(["direct", "hop"]),
  /** CopilotKit's `runtimeUrl`: agui-server's `/copilotkit` (direct) or the hop's `/api/copilotkit`. */
  runtimeUrl: z.string().min(1),
  /** agui-server's `GET /whoami` (direct) or the hop's same-origin pass-through. */
  whoamiUrl: z.string().min(1),
  /** agui-server's `GET /copilotkit/threads` (direct) or the hop's same-origin pass-through. */
  threadsUrl: z.string().min(1),
  /**
   * "Sign in with GitHub": agui-server's `/auth/github/login` as the browser reaches it, whose
   * origin is the only one the hand-off message is taken from; absent or null when agui-server
   * has no GitHub app configured (then the button is not shown).
   */
  github: z.object({ loginUrl: z.string().url() }).nullish(),
});

/** The app's settings. */
export type AppConfig = z.infer<typeof AppConfigSchema>;

/** Fetches /config.json; throws with a readable message when it is missing or not the app's. */
export async function loadConfig(): Promise<AppConfig> {
  const response = await fetch("/config.json", { cache: "no-store" });
  if (!response.ok) throw new Error(`could not load /config.json (HTTP ${response.status})`);
  const parsed = AppConfigSchema.safeParse(await response.json());
  if (!parsed.success) throw new Error(`/config.json is not this app's: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  return parsed.data;
}
