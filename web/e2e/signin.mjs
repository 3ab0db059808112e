// Real-browser tests of signing in and out (web/src/SignIn.tsx), apart from the chat's tests in
// browser.mjs: Debian's Chromium through playwright-core, on loopback only.
//
// - "Sign in with GitHub" through the local GitHub stand-in (target/debug/github-standin, never
//   github.com): agui-server's /auth/github/login in a popup, the stand-in's authorize page, the
//   hand-off back to the app; the chat greets the GitHub user by name, a tool gated by the
//   team-mapped role works for the team member and not for another member of the org (the
//   control), a user outside the allowlist is refused visibly, the token is in no URL, a second tab
//   gets it, and sign-out forgets it in both.
// - The OpenID session: the login page names the app and lists the demo accounts, a second tab is
//   signed in without asking (silent sign-in), a fresh browser is not (the control), and sign-out
//   takes one click and ends the provider's session.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

import { DEMO_ACCOUNTS, DEMO_APP_NAME } from '../../tests/idp/demo.mjs';
import { REPO_ROOT } from '../scripts/stack.mjs';
import { assert } from './harness.mjs';

const STEP_TIMEOUT_MS = 20_000;
const CHROMIUM_ROUTE_LOOPBACK_ONLY = /^https?:\/\/(?!127\.0\.0\.1[:/])/;
/** agui-server's role mapping for the GitHub stand-in's teams (TOML only). */
export const GITHUB_ROLES_TOML = '[auth.github]\nroles = { admin = ["acme/platform"] }\n';

/**
 * Starts the GitHub stand-in binary; resolves with its ready line and a stop function.
 *
 * @returns {Promise<{url: string, api_url: string, client_id: string, client_secret: string, stop: () => Promise<void>}>}
 */
export async function startGitHubStandIn() {
  const bin = join(REPO_ROOT, process.env.AGUI_GITHUB_STANDIN_BIN ?? 'target/debug/github-standin');
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run \`cargo build --workspace --all-targets\` first`);
  const child = spawn(bin, ['--port', '0', '--exit-on-stdin-close'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    // Its stdin closing is what stops it (--exit-on-stdin-close); SIGTERM alone leaves its stdin
    // reader thread waiting. SIGKILL if neither worked within 5 s.
    child.stdin.end();
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  };
  const ready = await new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`github-standin exited before it was ready (code ${code})`)));
    createInterface({ input: child.stdout }).on('line', (line) => {
      try {
        const parsed = JSON.parse(line);
        if (parsed.url) resolve(parsed);
      } catch {
        // not the ready line
      }
    });
  });
  return { ...ready, stop };
}

/** The stack's agui-server GitHub settings for the stand-in: org `acme` allowed. */
export function standInGitHubEnv(standin) {
  return {
    AGUI_GITHUB_CLIENT_ID: standin.client_id,
    AGUI_GITHUB_CLIENT_SECRET: standin.client_secret,
    AGUI_GITHUB_API_URL: standin.api_url,
    AGUI_GITHUB_WEB_URL: standin.url,
    AGUI_GITHUB_ALLOWED_ORGS: 'acme',
  };
}

async function newContext(browser) {
  const context = await browser.newContext({ viewport: { width: 1180, height: 820 } });
  const external = [];
  await context.route(CHROMIUM_ROUTE_LOOPBACK_ONLY, (route) => {
    external.push(route.request().url());
    return route.abort();
  });
  // Every URL any page of this context asked for (the token must be in none of them).
  const urls = [];
  context.on('request', (request) => urls.push(request.url()));
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  return { context, external, urls };
}

function step(h, page, shots, name, fn) {
  return h.test(name, async () => {
    try {
      await fn();
    } catch (error) {
      const file = `FAILED-${name.replace(/[^a-z0-9]+/gi, '-').slice(0, 80)}.png`;
      await page.screenshot({ path: join(shots, file) }).catch(() => {});
      throw error;
    }
  });
}

async function chatReady(page) {
  await page.getByTestId('chat').locator('textarea').first().waitFor();
  await page.locator('[data-testid=chat][data-runtime=connected][data-running=false]').waitFor();
  await page.locator('[data-testid=chat-view][data-connecting=false]').waitFor({ state: 'attached' });
}

async function send(page, text) {
  const input = page.getByTestId('chat').locator('textarea').first();
  await input.fill(text);
  await input.press('Enter');
}

// Clicks "Sign in with GitHub", picks `login` on the stand-in's authorize page in the popup and
// waits for the popup to close (the hand-off page closes itself; after a refusal the app does).
async function signInWithGitHub(page, login) {
  const popupOpened = page.waitForEvent('popup');
  popupOpened.catch(() => {});
  await page.getByTestId('sign-in-github').click();
  const popup = await popupOpened;
  const closed = popup.waitForEvent('close', { timeout: STEP_TIMEOUT_MS });
  closed.catch(() => {});
  await popup.locator(`a.user[data-login="${login}"]`).click();
  await closed;
}

/**
 * "Sign in with GitHub" on a stack started with the stand-in's settings (`github` option) and
 * {@link GITHUB_ROLES_TOML}.
 */
export async function runBrowserGitHub(h, stack, browser, shots, standin) {
  const label = `browser (${stack.mode})`;
  const { context, external, urls } = await newContext(browser);
  const page = await context.newPage();
  const tokenKey = 'agui.github.token';
  const storedToken = (p) => p.evaluate((key) => window.sessionStorage.getItem(key), tokenKey);
  try {
    await page.goto(stack.webUrl);
    await step(h, page, shots, `${label}: Sign in with GitHub through the stand-in's authorize page; the chat greets the GitHub user by name`, async () => {
      await signInWithGitHub(page, 'octocat');
      await page.getByTestId('identity-name').filter({ hasText: 'The Octocat' }).waitFor();
      assert((await page.getByTestId('identity').getAttribute('data-subject')) === '583231', 'the subject is not the numeric GitHub id');
      await chatReady(page);
      await send(page, 'hello from GitHub');
      await page.getByText('Hello, The Octocat! You said: "hello from GitHub"').waitFor();
      const token = await storedToken(page);
      assert(token?.startsWith('gho_'), 'no GitHub token kept for the tab');
      const inUrl = urls.filter((u) => u.includes(token));
      assert(inUrl.length === 0, `the token appeared in a URL: ${inUrl[0]?.slice(0, 80)}`);
      assert(!(await page.evaluate(() => JSON.stringify(window.localStorage))).includes(token), 'the token is in localStorage');
      assert(external.length === 0, `requests that tried to leave loopback: ${external.join(', ')}`);
      await page.screenshot({ path: join(shots, `github-01-signed-in-${stack.mode}.png`) });
    });

    await step(h, page, shots, `${label}: the team-mapped role (acme/platform → admin) lets the GitHub user run "Delete document 2"`, async () => {
      await send(page, 'Delete document 2');
      await page.getByTestId('card-deleted').first().waitFor();
      assert((await page.getByTestId('card-denied').count()) === 0, 'the team member was denied');
      const roles = await page.getByTestId('identity-roles').innerText();
      assert(roles.includes('admin'), `roles shown: ${roles}`);
    });

    await step(h, page, shots, `${label}: a second tab is signed in with GitHub without asking; sign-out forgets the token in both`, async () => {
      const second = await context.newPage();
      await second.goto(stack.webUrl);
      await second.getByTestId('identity-name').filter({ hasText: 'The Octocat' }).waitFor();
      await page.getByTestId('sign-out').click();
      await page.getByTestId('sign-in-github').waitFor();
      await second.getByTestId('sign-in-github').waitFor();
      assert((await storedToken(page)) === null && (await storedToken(second)) === null, 'a tab still holds the token');
      await second.reload();
      await second.getByTestId('sign-in-github').waitFor();
      assert((await second.getByTestId('identity').count()) === 0, 'signed in after a reload');
      await second.close();
    });

    await step(h, page, shots, `${label}: another member of the org without the team gets no admin role: the delete is refused (control)`, async () => {
      await signInWithGitHub(page, 'hubot');
      // hubot has no profile name: the login is the name.
      await page.getByTestId('identity-name').filter({ hasText: 'hubot' }).waitFor();
      await chatReady(page);
      await send(page, 'Delete document 2');
      await page.getByTestId('card-denied').first().waitFor();
      assert((await page.getByTestId('card-deleted').count()) === 0, 'hubot deleted a document');
      await page.getByTestId('sign-out').click();
      await page.getByTestId('sign-in-github').waitFor();
    });

    await step(h, page, shots, `${label}: a GitHub user outside the allowlist sees "not allowed" and no chat`, async () => {
      await signInWithGitHub(page, 'mona');
      const message = await page.getByTestId('github-not-allowed').innerText();
      assert(/not allowed/i.test(message), `message: ${message}`);
      assert((await page.getByTestId('chat').count()) === 0 && (await storedToken(page)) === null, 'mona got a chat or a token');
      await page.screenshot({ path: join(shots, `github-02-not-allowed-${stack.mode}.png`) });
    });
  } finally {
    await context.close();
  }
}

/** The app without GitHub settings shows no GitHub button (the `make run` default). */
export async function runBrowserNoGitHubButton(h, stack, browser, shots) {
  const { context } = await newContext(browser);
  const page = await context.newPage();
  try {
    await page.goto(stack.webUrl);
    await step(h, page, shots, 'browser: without GitHub app settings the app offers only the OpenID sign-in', async () => {
      await page.getByTestId('sign-in').waitFor();
      assert((await page.getByTestId('sign-in-github').count()) === 0, 'a GitHub button without GitHub settings');
    });
  } finally {
    await context.close();
  }
}

/** The OpenID session: login page, second tab, one-click sign-out. */
export async function runBrowserOidcSession(h, stack, browser, shots) {
  const { context } = await newContext(browser);
  const page = await context.newPage();
  try {
    await page.goto(stack.webUrl);
    await step(h, page, shots, 'browser: the login page names the app (not the client id) and lists the demo accounts', async () => {
      await page.getByTestId('sign-in').click();
      await page.locator('input[name=password]').waitFor();
      const name = await page.getByTestId('app-name').innerText();
      assert(name === DEMO_APP_NAME, `the login page names "${name}"`);
      const accounts = await page.getByTestId('demo-accounts').innerText();
      for (const [login, account] of Object.entries(DEMO_ACCOUNTS)) {
        assert(accounts.includes(login) && accounts.includes(account.password), `account ${login} not listed`);
      }
      await page.screenshot({ path: join(shots, 'signin-01-login-page.png') });
      await page.fill('input[name=login]', 'vera');
      await page.fill('input[name=password]', DEMO_ACCOUNTS.vera.password);
      await page.click('button[type=submit]');
      await page.getByTestId('identity-name').filter({ hasText: 'Vera Viewer' }).waitFor();
    });

    await step(h, page, shots, 'browser: a second tab is signed in without asking; a fresh browser is not (control)', async () => {
      const second = await context.newPage();
      // The second tab's own address bar never leaves the app (no visit to the login page).
      const visited = [];
      second.on('framenavigated', (frame) => {
        if (frame === second.mainFrame()) visited.push(frame.url());
      });
      await second.goto(stack.webUrl);
      await second.getByTestId('identity-name').filter({ hasText: 'Vera Viewer' }).waitFor();
      assert(visited.every((u) => u.startsWith(stack.webUrl)), `the second tab went to ${visited.find((u) => !u.startsWith(stack.webUrl))}`);
      await chatReady(second);
      await second.close();
      const fresh = await newContext(browser);
      const other = await fresh.context.newPage();
      try {
        await other.goto(stack.webUrl);
        await other.getByTestId('sign-in').waitFor();
        assert((await other.getByTestId('identity').count()) === 0, 'a fresh browser was signed in');
      } finally {
        await fresh.context.close();
      }
    });

    await step(h, page, shots, 'browser: sign-out takes one click and ends the session at the provider', async () => {
      const visited = [];
      page.on('framenavigated', (frame) => {
        if (frame === page.mainFrame()) visited.push(frame.url());
      });
      await page.getByTestId('sign-out').click();
      await page.getByTestId('sign-in').waitFor();
      assert(page.url().startsWith(stack.webUrl), `after sign-out: ${page.url()}`);
      // One click: a confirmation page would have left the tab at the provider, never back here.
      assert(visited.some((u) => u.startsWith(stack.issuer)), 'sign-out never reached the provider');
      // The provider's session is gone: a new tab is not signed in silently, and signing in asks
      // for the password again.
      const second = await context.newPage();
      await second.goto(stack.webUrl);
      await second.getByTestId('sign-in').waitFor();
      await second.close();
      await page.getByTestId('sign-in').click();
      await page.locator('input[name=password]').waitFor();
    });
  } finally {
    await context.close();
  }
}
