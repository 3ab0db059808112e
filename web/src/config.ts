// The app's runtime settings, served by web/server as /config.json so the same build works for
// `make run`, the tests and any deployment (nothing here is secret: the app is a public client).

/** What web/server's /config.json holds. */
export interface AppConfig {
  /** The OpenID provider (issuer URL). */
  authority: string;
  /** The app's public client id at that provider. */
  clientId: string;
  /** Scopes to request: OIDC identity scopes plus agui-server's. */
  scope: string;
  /** oidc-client-ts automatic silent renew (off in the token-expiry test). */
  silentRenew: boolean;
  /** The CopilotKit runtime's base path (same origin). */
  runtimeUrl: string;
}

/** Fetches /config.json; throws with a readable message when the server is not the hop. */
export async function loadConfig(): Promise<AppConfig> {
  const response = await fetch("/config.json", { cache: "no-store" });
  if (!response.ok) throw new Error(`could not load /config.json (HTTP ${response.status})`);
  return (await response.json()) as AppConfig;
}
