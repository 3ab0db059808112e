// Who is signed in, and how: the OpenID sign-in (react-oidc-context) or "Sign in with GitHub"
// (agui-server's /auth/github/login in a popup). Either way the result is one `Session` whose
// token the chat forwards through CopilotKit `properties`, exactly alike (App.tsx).
//
// OpenID: a tab without a user tries one silent sign-in on load (prompt=none in a hidden iframe,
// oidc-client-ts `signinSilent`), so a second tab is signed in by the provider's session while the
// tokens stay in each tab's sessionStorage (never in localStorage, where every script of the
// origin could read them for as long as they live). Where the provider's cookies do not reach the
// iframe (a third-party IdP with third-party cookies blocked) it fails quietly and the tab shows
// the sign-in button.
//
// GitHub: agui-server's callback page posts `{type: "agui:github-login", ok, token, login, name}`
// to this origin (server/app/src/routes/github_login.rs); the message is taken only from the popup
// we opened and only from agui-server's origin. The token is then checked with agui-server's
// `/whoami` (which also gives the issuer and numeric subject the thread key needs), kept in this
// tab's sessionStorage, and handed to other tabs of this origin that ask for it over a
// BroadcastChannel (same-origin by definition; nothing is persisted beyond open tabs). Sign-out
// forgets it here and in every tab. A GitHub user outside agui-server's allowlists is told so.
import { useCallback, useEffect, useMemo, useRef, useState, type ReactElement } from "react";
import { hasAuthParams, useAuth } from "react-oidc-context";
import { z } from "zod";
import type { AppConfig } from "./config";
import { parseWhoAmI } from "./identity";

/** A signed-in user, whichever way she signed in. */
export interface Session {
  kind: "oidc" | "github";
  /** The access token forwarded to agui-server (`properties.authorization`). */
  token: string;
  /** agui-server's issuer and subject of the user (the thread key). */
  issuer: string;
  subject: string;
  signOut: () => void;
  /** After a 401: sign in the same way again. */
  signInAgain: () => void;
}

export type SessionState = { status: "loading" } | { status: "signed-out" } | { status: "signed-in"; session: Session };

/** Why a GitHub sign-in did not complete, for the sign-in page. */
export type GitHubProblem =
  | { kind: "not-allowed" }
  | { kind: "popup-blocked" }
  | { kind: "failed"; code: string };

/** The hand-off message of agui-server's callback page. */
export const GitHubLoginMessageSchema = z.discriminatedUnion("ok", [
  z.object({ type: z.literal("agui:github-login"), ok: z.literal(true), token: z.string().min(1), login: z.string(), name: z.string().nullish() }),
  z.object({ type: z.literal("agui:github-login"), ok: z.literal(false), error: z.string() }),
]);

const GITHUB_TOKEN_KEY = "agui.github.token";
const CHANNEL = "agui.github-session";
const ChannelMessageSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("ask") }),
  z.object({ type: z.literal("token"), token: z.string().min(1) }),
  z.object({ type: z.literal("signed-out") }),
]);

/** The page's session, from either sign-in. */
export function useSession(config: AppConfig): { state: SessionState; github: GitHubSignIn } {
  const auth = useAuth();
  const github = useGitHubSignIn(config);
  useSilentSignInOnLoad(!github.hasToken);

  const oidcToken = auth.user?.access_token;
  const state = useMemo<SessionState>(() => {
    if (auth.user && oidcToken) {
      return {
        status: "signed-in",
        session: {
          kind: "oidc",
          token: oidcToken,
          issuer: auth.user.profile.iss,
          subject: auth.user.profile.sub,
          // oidc-client-ts sends the id token as id_token_hint and the registered
          // post_logout_redirect_uri, so the demo provider signs out without asking.
          signOut: () => void auth.signoutRedirect(),
          signInAgain: () => void auth.signinRedirect(),
        },
      };
    }
    if (github.session) return { status: "signed-in", session: github.session };
    // A background renewal keeps the chat mounted: only a load or a navigation without a user waits.
    if (auth.isLoading || (auth.activeNavigator && !auth.user) || github.verifying) return { status: "loading" };
    return { status: "signed-out" };
  }, [auth, oidcToken, github.session, github.verifying]);
  return { state, github };
}

/** One `signinSilent` when the page loads without a user (a second tab, a reload after sign-in). */
function useSilentSignInOnLoad(enabled: boolean): void {
  const auth = useAuth();
  const tried = useRef(false);
  useEffect(() => {
    if (!enabled || tried.current || auth.isLoading || auth.user || auth.activeNavigator || hasAuthParams()) return;
    tried.current = true;
    // A failure (login_required: no session at the provider) lands in auth.error with source
    // "signinSilent"; the sign-in page does not show it.
    void auth.signinSilent();
  }, [enabled, auth]);
}

/** The GitHub side: its session (once agui-server verified the token), start, problems. */
export interface GitHubSignIn {
  /** The login URL (agui-server's /auth/github/login), or null when GitHub is not configured. */
  loginUrl: string | null;
  session: Session | null;
  /** A token is held (verified or being verified). */
  hasToken: boolean;
  verifying: boolean;
  pending: boolean;
  problem: GitHubProblem | null;
  start: () => void;
}

function readStoredToken(): string | null {
  try {
    return window.sessionStorage.getItem(GITHUB_TOKEN_KEY);
  } catch {
    return null;
  }
}

function useGitHubSignIn(config: AppConfig): GitHubSignIn {
  const loginUrl = config.github?.loginUrl ?? null;
  const [token, setToken] = useState<string | null>(() => (loginUrl ? readStoredToken() : null));
  const [who, setWho] = useState<{ token: string; issuer: string; subject: string } | null>(null);
  const [problem, setProblem] = useState<GitHubProblem | null>(null);
  const [pending, setPending] = useState(false);
  const popup = useRef<Window | null>(null);
  const channel = useRef<BroadcastChannel | null>(null);
  const tokenRef = useRef(token);
  tokenRef.current = token;

  const keep = useCallback((next: string | null, tell: boolean) => {
    if (next) window.sessionStorage.setItem(GITHUB_TOKEN_KEY, next);
    else window.sessionStorage.removeItem(GITHUB_TOKEN_KEY);
    setToken(next);
    if (!next) setWho(null);
    if (tell) channel.current?.postMessage(next ? { type: "token", token: next } : { type: "signed-out" });
  }, []);

  // Other tabs: answer their question, take a token when we have none, forget it on sign-out.
  useEffect(() => {
    if (!loginUrl || typeof BroadcastChannel === "undefined") return;
    const bc = new BroadcastChannel(CHANNEL);
    channel.current = bc;
    bc.onmessage = (event: MessageEvent) => {
      const message = ChannelMessageSchema.safeParse(event.data);
      if (!message.success) return;
      if (message.data.type === "ask" && tokenRef.current) bc.postMessage({ type: "token", token: tokenRef.current });
      if (message.data.type === "token" && !tokenRef.current) keep(message.data.token, false);
      if (message.data.type === "signed-out" && tokenRef.current) keep(null, false);
    };
    if (!tokenRef.current) bc.postMessage({ type: "ask" });
    return () => {
      bc.close();
      channel.current = null;
    };
  }, [loginUrl, keep]);

  // The hand-off from agui-server's callback page.
  useEffect(() => {
    if (!loginUrl) return;
    const origin = new URL(loginUrl).origin;
    const onMessage = (event: MessageEvent) => {
      if (event.origin !== origin || !popup.current || event.source !== popup.current) return;
      const message = GitHubLoginMessageSchema.safeParse(event.data);
      if (!message.success) return;
      setPending(false);
      if (message.data.ok) {
        setProblem(null);
        keep(message.data.token, true);
      } else {
        // The popup says it too; the app's message is the one that stays.
        popup.current.close();
        setProblem(message.data.error === "access_denied" ? { kind: "not-allowed" } : { kind: "failed", code: message.data.error });
      }
      popup.current = null;
    };
    window.addEventListener("message", onMessage);
    return () => window.removeEventListener("message", onMessage);
  }, [loginUrl, keep]);

  // agui-server verifies the token (and says who it is) before the chat mounts.
  useEffect(() => {
    if (!token || who?.token === token) return;
    const abort = new AbortController();
    fetch(config.whoamiUrl, { headers: { authorization: `Bearer ${token}` }, cache: "no-store", signal: abort.signal })
      .then(async (response) => {
        const answer = parseWhoAmI(response.status, await response.text());
        if (answer.ok) {
          setWho({ token, issuer: answer.who.issuer, subject: answer.who.subject });
          return;
        }
        keep(null, false);
        setProblem(answer.status === 403 ? { kind: "not-allowed" } : { kind: "failed", code: answer.status === 401 ? "expired" : `HTTP ${answer.status}` });
      })
      .catch((error: Error) => {
        if (error.name === "AbortError") return;
        keep(null, false);
        setProblem({ kind: "failed", code: "agui-server is not reachable" });
      });
    return () => abort.abort();
  }, [token, who, config.whoamiUrl, keep]);

  const start = useCallback(() => {
    if (!loginUrl) return;
    setProblem(null);
    // Not `noopener`: the callback page needs window.opener to hand the token over.
    const opened = window.open(loginUrl, "agui-github-login", "popup,width=600,height=720");
    if (!opened) {
      setProblem({ kind: "popup-blocked" });
      return;
    }
    popup.current = opened;
    setPending(true);
  }, [loginUrl]);

  const session = useMemo<Session | null>(
    () =>
      token && who?.token === token
        ? { kind: "github", token, issuer: who.issuer, subject: who.subject, signOut: () => keep(null, true), signInAgain: () => { keep(null, true); start(); } }
        : null,
    [token, who, keep, start],
  );
  return { loginUrl, session, hasToken: Boolean(token), verifying: Boolean(token) && !session, pending, problem, start };
}

/** The signed-out page: the OpenID sign-in and, when configured, "Sign in with GitHub". */
export function SignInPanel({ github }: { github: GitHubSignIn }): ReactElement {
  const auth = useAuth();
  // The silent sign-in on load failing is the normal signed-out case, not an error to show.
  const error = auth.error && auth.error.source !== "signinSilent" ? auth.error : null;
  return (
    <section className="signin">
      <h2>Sign in to chat</h2>
      <p className="muted">The assistant answers as you: your identity and roles decide what its tools may do.</p>
      {error ? <p className="banner error" role="alert">Sign-in failed: {error.message}</p> : null}
      <GitHubProblemBanner problem={github.problem} />
      <div className="signin-buttons" style={{ display: "flex", gap: "0.5rem", flexWrap: "wrap" }}>
        <button type="button" data-testid="sign-in" onClick={() => void auth.signinRedirect()}>
          Sign in
        </button>
        {github.loginUrl ? (
          <button type="button" className="secondary" data-testid="sign-in-github" onClick={github.start} disabled={github.pending}>
            {github.pending ? "Waiting for GitHub…" : "Sign in with GitHub"}
          </button>
        ) : null}
      </div>
    </section>
  );
}

function GitHubProblemBanner({ problem }: { problem: GitHubProblem | null }): ReactElement | null {
  if (!problem) return null;
  if (problem.kind === "not-allowed") {
    return (
      <p className="banner error" role="alert" data-testid="github-not-allowed">
        Your GitHub account is not allowed to use this app. Ask its administrators to add you to the allowed users,
        organizations or teams.
      </p>
    );
  }
  if (problem.kind === "popup-blocked") {
    return (
      <p className="banner error" role="alert" data-testid="github-problem">
        The GitHub sign-in window was blocked. Allow pop-ups for this page and try again.
      </p>
    );
  }
  return (
    <p className="banner error" role="alert" data-testid="github-problem">
      Sign-in with GitHub did not complete ({problem.code}). Try again.
    </p>
  );
}
