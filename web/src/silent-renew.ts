// The silent-renew callback page: oidc-client-ts opens it in a hidden iframe with prompt=none and
// this hands the authorization response back to the app window, which finishes the renewal.
import { UserManager } from "oidc-client-ts";
import { loadConfig } from "./config";

const config = await loadConfig();
await new UserManager({
  authority: config.authority,
  client_id: config.clientId,
  redirect_uri: `${window.location.origin}/`,
}).signinSilentCallback();
