// Entry point: loads the runtime settings, then mounts the app inside react-oidc-context's
// AuthProvider (authorization code + PKCE, oidc-client-ts; PKCE is its default for the code flow).
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { AuthProvider, type AuthProviderProps } from "react-oidc-context";
import { WebStorageStateStore } from "oidc-client-ts";
import "@copilotkit/react-core/v2/styles.css";
import "./styles.css";
import { App } from "./App";
import { loadConfig } from "./config";

const root = createRoot(document.getElementById("root")!);

try {
  const config = await loadConfig();
  const origin = window.location.origin;
  const oidc: AuthProviderProps = {
    authority: config.authority,
    client_id: config.clientId,
    redirect_uri: `${origin}/`,
    silent_redirect_uri: `${origin}/silent-renew.html`,
    post_logout_redirect_uri: `${origin}/`,
    scope: config.scope,
    automaticSilentRenew: config.silentRenew,
    // Tokens live for this tab only (oidc-client-ts's default store, named here on purpose).
    userStore: new WebStorageStateStore({ store: window.sessionStorage }),
    // Drop ?code=…&state=… from the address bar once the sign-in is complete.
    onSigninCallback: () => window.history.replaceState({}, document.title, window.location.pathname),
  };
  root.render(
    <StrictMode>
      <AuthProvider {...oidc}>
        <App config={config} />
      </AuthProvider>
    </StrictMode>,
  );
} catch (error) {
  root.render(<p role="alert">The app could not start: {String((error as Error).message ?? error)}</p>);
}
