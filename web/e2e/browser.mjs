// Real-browser end-to-end tests: Debian's Chromium (/usr/bin/chromium, never a downloaded browser)
// driven headless by playwright-core against the real stack on loopback (IdP login page,
// react-oidc-context code flow + PKCE, CopilotKit chat, the runtime hop, agui-server, the scripted
// model). Screenshots of the key states go to web/e2e/screenshots/ (git-ignored).

import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { DEMO_ACCOUNTS } from '../../tests/idp/demo.mjs';
import { assert, auditRecords, chatDirect, sseEvents, toolResult } from './harness.mjs';

/** The Chromium the tests drive (Debian's package; AGUI_CHROMIUM overrides). */
export const CHROMIUM = process.env.AGUI_CHROMIUM ?? '/usr/bin/chromium';

// The flags known to work on this kind of machine (.library/env/machines/rust-svc.md "Known to
// work"): without the background-networking ones Chromium keeps dialling Google's hosts, which the
// closed network refuses. Playwright adds --headless and a fresh temporary --user-data-dir.
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const STEP_TIMEOUT_MS = 20_000;

/**
 * Launches headless Chromium, or explains why it cannot.
 *
 * @returns {Promise<{browser?: import('playwright-core').Browser, reason?: string}>}
 */
export async function launchBrowser() {
  if (!existsSync(CHROMIUM)) return { reason: `${CHROMIUM} not found (run web/scripts/install-chromium.sh, or apt-get install chromium)` };
  const { chromium } = await import('playwright-core');
  try {
    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
    return { browser };
  } catch (error) {
    return { reason: `Chromium did not start: ${error.message.split('\n')[0]}` };
  }
}

export async function newPage(browser, stack) {
  const context = await browser.newContext({ viewport: { width: 1180, height: 820 } });
  // Hermetic: nothing may leave loopback. Every page (the app, the IdP's login, logout and error
  // pages) must be self-contained: an attempt is blocked and recorded, and the sign-out step
  // asserts there was none.
  const external = [];
  await context.route(/^https?:\/\/(?!127\.0\.0\.1[:/])/, (route) => {
    external.push(route.request().url());
    return route.abort();
  });
  const page = await context.newPage();
  page.externalRequests = external;
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  page.consoleErrors = [];
  page.on('console', (message) => {
    if (message.type() === 'error') page.consoleErrors.push(message.text());
  });
  await page.goto(stack.webUrl);
  return page;
}

// h.test, plus a screenshot of the page when the test fails (FAILED-<test>.png).
export function step(h, page, shots, name, fn) {
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

// The chat is ready to send once CopilotKit has reached the runtime (`/info`) and has connected
// to the chat's thread (its replay, empty for a new chat, has ended): the app's chat container
// and CopilotKit's chat view say so (src/App.tsx). Typing earlier could race either.
export async function chatReady(page) {
  await page.getByTestId('chat').locator('textarea').first().waitFor();
  await page.locator('[data-testid=chat][data-runtime=connected][data-running=false]').waitFor();
  await page.locator('[data-testid=chat-view][data-connecting=false]').waitFor({ state: 'attached' });
}

export async function fillLogin(page, login, password) {
  await page.locator('input[name=password]').waitFor();
  await page.fill('input[name=login]', login);
  await page.fill('input[name=password]', password);
  await page.click('button[type=submit]');
}

export async function signIn(page, login) {
  await page.getByTestId('sign-in').click();
  await fillLogin(page, login, DEMO_ACCOUNTS[login].password);
  await page.getByTestId('identity-name').filter({ hasText: DEMO_ACCOUNTS[login].name }).waitFor();
  await chatReady(page);
}

export async function send(page, text) {
  const input = page.getByTestId('chat').locator('textarea').first();
  await input.fill(text);
  await input.press('Enter');
}

/**
 * What follows the last user message containing `text` in the transcript: the app's note (its
 * `data-testid`, `data-kind` and text) or CopilotKit's next message.
 *
 * @param {import('playwright-core').Page} page
 * @param {string} text
 */
export function afterUserMessage(page, text) {
  return page.evaluate((wanted) => {
    const mine = [...document.querySelectorAll('[data-testid=copilot-user-message]')].filter((el) => el.textContent.includes(wanted));
    const next = mine.at(-1)?.nextElementSibling;
    return next ? { testid: next.getAttribute('data-testid') ?? '', kind: next.getAttribute('data-kind') ?? '', text: next.textContent.trim() } : null;
  }, text);
}

/**
 * What follows the last assistant message matching `pattern`: the app's note (its `data-testid`
 * and text) or CopilotKit's next message.
 *
 * @param {import('playwright-core').Page} page
 * @param {string} pattern a regular expression's source
 */
export function afterAssistantMessage(page, pattern) {
  return page.evaluate((source) => {
    const wanted = new RegExp(source);
    const mine = [...document.querySelectorAll('[data-testid=copilot-assistant-message]')].filter((el) => wanted.test(el.textContent.trim()));
    const next = mine.at(-1)?.nextElementSibling;
    return next ? { testid: next.getAttribute('data-testid') ?? '', text: next.textContent.trim() } : null;
  }, pattern);
}

async function waitForCount(locator, count) {
  await locator.nth(count - 1).waitFor();
}

// The signed-in user's access token, as oidc-client-ts stored it (sessionStorage key
// `oidc.user:<authority>:<client_id>`, shared/reference/copilotkit.md §6).
async function storedUser(page, stack) {
  const raw = await page.evaluate((key) => window.sessionStorage.getItem(key), `oidc.user:${stack.issuer}:agui-web`);
  assert(raw, 'no signed-in user in sessionStorage');
  return JSON.parse(raw);
}

/**
 * The main flow, as the viewer and then the admin. Run on a stack whose agui-server does NOT
 * accept body tokens, so every successful run also proves the properties → header bridge.
 */
export async function runBrowserMain(h, stack, browser, shots) {
  const passStart = Date.now();
  const page = await newPage(browser, stack);
  const cards = (id) => page.getByTestId(id);
  try {
    await step(h, page, shots, 'browser: a wrong password is refused on the IdP login page', async () => {
      await page.getByTestId('sign-in').click();
      await fillLogin(page, 'vera', DEMO_ACCOUNTS.ada.password);
      await page.getByText('Wrong name or password').waitFor();
      assert(page.url().startsWith(stack.issuer), `left the IdP: ${page.url()}`);
      await page.screenshot({ path: join(shots, '01-wrong-password.png') });
    });

    await step(h, page, shots, 'browser: the viewer signs in; the page shows who agui-server verified (name, email, role)', async () => {
      await fillLogin(page, 'vera', DEMO_ACCOUNTS.vera.password);
      await page.getByTestId('identity-name').filter({ hasText: 'Vera Viewer' }).waitFor();
      const identity = await page.getByTestId('identity').innerText();
      assert(identity.includes('vera@example.test') && identity.includes('viewer'), `identity shows: ${identity}`);
      assert(page.url().startsWith(stack.webUrl) && !page.url().includes('code='), `url: ${page.url()}`);
      await page.getByRole('button', { name: 'Who am I?' }).waitFor();
      await page.screenshot({ path: join(shots, '02-signed-in-suggestions.png') });
    });

    await step(h, page, shots, 'browser: the "Who am I?" suggestion runs the whoami tool and shows the identity card', async () => {
      await page.getByRole('button', { name: 'Who am I?' }).click();
      await waitForCount(cards('card-identity'), 1);
      const text = await cards('card-identity').first().innerText();
      assert(text.includes('Vera Viewer') && text.includes('viewer'), `identity card: ${text}`);
    });

    await step(h, page, shots, "browser: the reply after the tool is a sentence, not its JSON (no \"[blocked]\" link), and the card's role pill is visible", async () => {
      const reply = page.getByTestId('copilot-assistant-message').filter({ hasText: 'Here is who you are' });
      await reply.first().waitFor();
      const text = await reply.first().innerText();
      assert(text.trim() === 'Here is who you are: Vera Viewer, role viewer.', `whoami reply: ${text}`);
      // CopilotKit's stylesheet has its own --accent (near-white) inside the chat: the pill must use the app's.
      const pill = await cards('card-identity').first().locator('.role').first().evaluate((el) => {
        const style = getComputedStyle(el);
        return { background: style.backgroundColor, color: style.color };
      });
      const accent = await page.evaluate(() => getComputedStyle(document.querySelector('.topbar .dot')).backgroundColor);
      assert(pill.background === accent && pill.color === 'rgb(255, 255, 255)', `role pill ${JSON.stringify(pill)}, app accent ${accent}`);
    });

    await step(h, page, shots, 'browser: the streamed reply names the viewer and reached the page as several TEXT_MESSAGE_CONTENT events', async () => {
      const expected = 'Hello, Vera Viewer! You said: "hello from the browser"';
      // The bodies of the page's run requests (the runtime's SSE), read once each run has ended.
      const bodies = [];
      const onResponse = (response) => {
        if (response.request().method() === 'POST' && response.url().startsWith(stack.runtimeUrl) && /\/agent\/[^/]+\/run$/.test(new URL(response.url()).pathname)) {
          bodies.push(response.text());
        }
      };
      page.on('response', onResponse);
      try {
        await send(page, 'hello from the browser');
        await page.getByText(expected).waitFor();
      } finally {
        page.off('response', onResponse);
      }
      assert(bodies.length === 1, `run requests while sending: ${bodies.length}`);
      const events = sseEvents(await bodies[0]);
      const deltas = events.filter((e) => e.type === 'TEXT_MESSAGE_CONTENT');
      // The page's text is these deltas joined, and there was more than one of them.
      assert(deltas.map((e) => e.delta).join('') === expected, `the deltas join to: ${deltas.map((e) => e.delta).join('')}`);
      assert(deltas.length >= 2, `the reply arrived as ${deltas.length} TEXT_MESSAGE_CONTENT event(s)`);
      assert(new Set(deltas.map((e) => e.messageId)).size === 1, 'the deltas belong to more than one message');
    });

    await step(h, page, shots, 'browser: the viewer\'s "Delete document 2" is denied and document 2 still exists (checked through agui-server)', async () => {
      await send(page, 'Delete document 2');
      await waitForCount(cards('card-denied'), 1);
      const text = await cards('card-denied').first().innerText();
      assert(text.includes('delete_document'), `denial card: ${text}`);
      const { access_token: token } = await storedUser(page, stack);
      const { status, events } = await chatDirect(stack.aguiUrl, token, 'show document 2');
      const doc = toolResult(events);
      assert(status === 200 && doc?.id === 2 && !doc.error, `document 2 after the denied delete: ${JSON.stringify(doc)}`);
    });

    await step(h, page, shots, 'browser: the frontend tool changes the page accent colour and the agent continues with its result', async () => {
      await send(page, 'Change the accent colour to teal');
      await waitForCount(cards('card-accent'), 1);
      await page.getByText('Accent colour set to teal.').waitFor();
      const card = await cards('card-accent').first().innerText();
      assert(card.includes('Accent colour changed to teal'), `accent card: ${card}`);
      const accent = await page.evaluate(() => ({
        variable: getComputedStyle(document.documentElement).getPropertyValue('--app-accent').trim(),
        border: getComputedStyle(document.querySelector('.topbar')).borderBottomColor,
      }));
      assert(accent.variable === 'teal' && accent.border === 'rgb(0, 128, 128)', `accent: ${JSON.stringify(accent)}`);
      // Tall enough to show the whole conversation (the chat scrolls inside its own box).
      await page.setViewportSize({ width: 1180, height: 1320 });
      await page.getByText('Accent colour set to teal.').scrollIntoViewIfNeeded();
      await page.screenshot({ path: join(shots, '03-viewer-chat.png') });
      await page.setViewportSize({ width: 1180, height: 820 });
    });

    await step(h, page, shots, 'browser: the "List my documents" suggestion shows the viewer\'s documents (as agui-server lists them for her)', async () => {
      // A fresh chat for the list: "New chat" starts one (it offers the suggestions too).
      await page.getByTestId('new-chat').click();
      await chatReady(page);
      await page.getByRole('button', { name: 'List my documents' }).click();
      await waitForCount(cards('card-documents'), 1);
      const card = cards('card-documents').first();
      const shown = await card.locator('li').evaluateAll((items) => items.map((li) => ({ id: li.dataset.docId, text: li.textContent.trim() })));
      const { access_token: token } = await storedUser(page, stack);
      const listed = toolResult((await chatDirect(stack.aguiUrl, token, 'list my documents')).events);
      assert(Array.isArray(listed?.documents) && listed.documents.length > 0, `agui-server's list for the viewer: ${JSON.stringify(listed)}`);
      const expected = listed.documents.map((d) => ({ id: String(d.id), text: `#${d.id} ${d.title}` }));
      assert(JSON.stringify(shown) === JSON.stringify(expected), `the card shows ${JSON.stringify(shown)}, agui-server lists ${JSON.stringify(expected)}`);
      // Document 2 is among them: the viewer's delete was refused.
      assert(shown.some((d) => d.id === '2'), 'document 2 is missing from the viewer\'s list');
    });

    await step(h, page, shots, 'browser: sign-out ends the session at the IdP (the next sign-in asks for a password)', async () => {
      // One click: the demo provider skips its confirmation for the app (tests/idp/DEMO.md).
      await page.getByTestId('sign-out').click();
      await page.getByTestId('sign-in').waitFor();
      assert(page.url().startsWith(stack.webUrl), `after sign-out: ${page.url()}`);
      assert(page.externalRequests.length === 0, `requests that tried to leave loopback: ${page.externalRequests.join(', ')}`);
      const stored = await page.evaluate((key) => window.sessionStorage.getItem(key), `oidc.user:${stack.issuer}:agui-web`);
      assert(stored === null, 'the user is still stored');
      await page.getByTestId('sign-in').click();
      await page.locator('input[name=password]').waitFor();
    });

    await step(h, page, shots, 'browser: the admin signs in and "Delete document 2" succeeds (checked through agui-server)', async () => {
      await fillLogin(page, 'ada', DEMO_ACCOUNTS.ada.password);
      await page.getByTestId('identity-name').filter({ hasText: 'Ada Lovelace' }).waitFor();
      await chatReady(page);
      await send(page, 'Delete document 2');
      await waitForCount(cards('card-deleted'), 1);
      assert((await cards('card-denied').count()) === 0, 'the admin got a denial card');
      const { access_token: token } = await storedUser(page, stack);
      const { status, events } = await chatDirect(stack.aguiUrl, token, 'show document 2');
      const doc = toolResult(events);
      assert(status === 200 && doc?.error === 'not_found', `document 2 after the admin's delete: ${JSON.stringify(doc)}`);
      // Control: the same question about a document she did not delete is answered.
      const other = toolResult((await chatDirect(stack.aguiUrl, token, 'show document 1')).events);
      assert(other?.id === 1 && !other.error, `document 1: ${JSON.stringify(other)}`);
      await page.screenshot({ path: join(shots, '04-admin-deleted.png') });
    });

    await step(h, page, shots, "browser: agui-server recorded every run of this pass with credential_source=header (body token source off)", async () => {
      // agui-server's per-run record (its audit log's run_started), read with its own CLI.
      const runs = auditRecords(stack, { kind: 'run_started', since: passStart });
      const bySubject = (sub) => runs.filter((r) => r.subject === sub).length;
      assert(bySubject('vera') > 0 && bySubject('ada') > 0, `runs recorded: vera ${bySubject('vera')}, ada ${bySubject('ada')}`);
      const other = runs.filter((r) => r.detail?.credential_source !== 'header');
      assert(other.length === 0, `runs not authenticated by header: ${JSON.stringify(other.map((r) => r.detail))}`);
    });
  } finally {
    await page.context().close();
  }
}

/**
 * Expiry: a short access-token lifetime, leeway 0 and silent renew off. An expired token must
 * produce the "sign in again" prompt, and signing in again must restore the chat.
 */
export async function runBrowserExpiry(h, stack, browser, shots) {
  const page = await newPage(browser, stack);
  try {
    let expiresAt;
    await step(h, page, shots, 'browser (expiry): a fresh short-lived token works (control)', async () => {
      await signIn(page, 'vera');
      await send(page, 'hello before expiry');
      await page.getByText('Hello, Vera Viewer! You said: "hello before expiry"').waitFor();
      expiresAt = (await storedUser(page, stack)).expires_at;
      assert(typeof expiresAt === 'number', 'no expires_at');
    });

    await step(h, page, shots, 'browser (expiry): an expired token produces the re-sign-in prompt, not a silent failure', async () => {
      assert(expiresAt, 'no control run');
      // Wait for the token's own `exp` to pass (leeway is 0): the cause, not a guessed duration.
      await page.waitForFunction((exp) => Date.now() / 1000 > exp + 1, expiresAt, { timeout: 30_000, polling: 250 });
      await send(page, 'hello after expiry');
      await page.locator('[data-testid=run-error][data-kind=expired]').waitFor();
      const under = await afterUserMessage(page, 'hello after expiry');
      assert(under?.testid === 'run-error' && /session expired/i.test(under.text), `under the message: ${JSON.stringify(under)}`);
      assert((await page.getByText('Hello, Vera Viewer! You said: "hello after expiry"').count()) === 0, 'the expired token was accepted');
      await page.screenshot({ path: join(shots, '05-session-expired.png') });
    });

    await step(h, page, shots, 'browser (expiry): "Sign in again" re-authenticates and the chat works again', async () => {
      await page.getByTestId('sign-in-again').click();
      // The IdP session is still alive, so the provider may answer without showing its form.
      const form = page.locator('input[name=password]');
      const identity = page.getByTestId('identity-name').filter({ hasText: 'Vera Viewer' });
      await Promise.race([form.waitFor(), identity.waitFor()]);
      if (await form.isVisible()) await fillLogin(page, 'vera', DEMO_ACCOUNTS.vera.password);
      await identity.waitFor();
      await chatReady(page);
      const user = await storedUser(page, stack);
      assert(user.expires_at > expiresAt, 'the token was not renewed');
      await send(page, 'hello after signing in again');
      await page.getByText('Hello, Vera Viewer! You said: "hello after signing in again"').waitFor();
    });
  } finally {
    await page.context().close();
  }
}

/**
 * A run agui-server refuses with 403 (the stack requires a scope the app does not request) shows
 * the "not allowed" message with agui-server's error code.
 */
export async function runBrowserForbidden(h, stack, browser, shots) {
  const page = await newPage(browser, stack);
  try {
    await step(h, page, shots, 'browser (403): a run agui-server refuses with insufficient_scope shows a clear "not allowed" message', async () => {
      await signInUnverified(page, 'vera');
      await send(page, 'hello without the required scope');
      await page.locator('[data-testid=run-error][data-kind=forbidden]').waitFor();
      const under = await afterUserMessage(page, 'hello without the required scope');
      assert(under?.testid === 'run-error' && under.text.includes('not allowed') && under.text.includes('insufficient_scope'), `under the message: ${JSON.stringify(under)}`);
      assert((await page.getByText('You said: "hello without the required scope"').count()) === 0, 'the run was answered');
      await page.screenshot({ path: join(shots, '06-forbidden.png') });
    });
  } finally {
    await page.context().close();
  }
}

// Sign-in when agui-server will not verify the user (the identity panel cannot show a name).
async function signInUnverified(page, login) {
  await page.getByTestId('sign-in').click();
  await fillLogin(page, login, DEMO_ACCOUNTS[login].password);
  await chatReady(page);
}

/**
 * Silent renew: with a 70 s token, oidc-client-ts (expiring notification 60 s before `exp`) renews
 * it through the hidden silent-renew.html iframe about 10 s after sign-in, without leaving the page,
 * and the chat keeps working with the new token.
 */
export async function runBrowserSilentRenew(h, stack, browser, shots) {
  const page = await newPage(browser, stack);
  try {
    await step(h, page, shots, 'browser (silent renew): the token is renewed in the background; the same conversation goes on', async () => {
      await signIn(page, 'vera');
      await send(page, 'hello before renewal');
      await page.getByText('Hello, Vera Viewer! You said: "hello before renewal"').waitFor();
      const first = await storedUser(page, stack);
      const key = `oidc.user:${stack.issuer}:agui-web`;
      await page.waitForFunction(
        ([storageKey, token]) => {
          const raw = window.sessionStorage.getItem(storageKey);
          return raw !== null && JSON.parse(raw).access_token !== token;
        },
        [key, first.access_token],
        { timeout: 40_000, polling: 500 },
      );
      const renewed = await storedUser(page, stack);
      assert(renewed.expires_at >= first.expires_at, 'the renewed token expires earlier');
      assert(page.url().startsWith(stack.webUrl), `the page navigated away: ${page.url()}`);
      await send(page, 'hello with a renewed token');
      await page.getByText('Hello, Vera Viewer! You said: "hello with a renewed token"').waitFor();
      // Same conversation: the renewal did not remount the chat.
      assert((await page.getByText('Hello, Vera Viewer! You said: "hello before renewal"').count()) === 1, 'the conversation was lost');
    });
  } finally {
    await page.context().close();
  }
}

/**
 * agui-server's own refusals through the runtime (stack E: the `default` agent requires the `admin`
 * role; one run a minute per user, already used by the contract tests): the viewer, whom the hop
 * verifies, gets agui-server's 403 as the "not allowed" message; the admin, over the rate limit,
 * gets agui-server's 429 as a visible, human message.
 */
export async function runBrowserAguiRefusals(h, stack, browser, shots) {
  let page = await newPage(browser, stack);
  try {
    await step(h, page, shots, "browser (agui-server's 403 via the runtime): the viewer's run on an admin-only agent shows \"not allowed\" with access_denied", async () => {
      await signIn(page, 'vera'); // the identity panel shows Vera: the hop and /whoami accept her
      await send(page, 'hello to the admin-only agent');
      await page.locator('[data-testid=run-error][data-kind=forbidden]').waitFor();
      const under = await afterUserMessage(page, 'hello to the admin-only agent');
      assert(under?.testid === 'run-error' && under.text.includes('not allowed') && under.text.includes('access_denied'), `under the message: ${JSON.stringify(under)}`);
      assert((await page.getByText('You said: "hello to the admin-only agent"').count()) === 0, 'the run was answered');
      await page.screenshot({ path: join(shots, '07-agui-forbidden.png') });
    });
  } finally {
    await page.context().close();
  }
  page = await newPage(browser, stack);
  try {
    await step(h, page, shots, "browser (agui-server's 429 via the runtime): the admin over the rate limit sees a human message", async () => {
      await signIn(page, 'ada');
      const refused = page.getByTestId('run-error');
      // The contract tests used ada's one run a minute; if a minute has passed since, this first
      // run is answered and the next one, back to back, is over the limit.
      let last;
      for (const text of ['first message', 'second message']) {
        if (await refused.isVisible()) break;
        last = text;
        await send(page, text);
        const answered = page.getByText(`Hello, Ada Lovelace! You said: "${text}"`);
        await Promise.race([refused.waitFor().catch(() => {}), answered.waitFor().catch(() => {})]);
      }
      // In the transcript, under the message that was refused, not in a banner above the chat.
      const under = await afterUserMessage(page, last);
      assert(under?.testid === 'run-error' && under.kind === 'other' && /too many requests/i.test(under.text), `under "${last}": ${JSON.stringify(under)}`);
      assert((await page.getByRole('alert').count()) === 1, `alerts: ${JSON.stringify(await page.getByRole('alert').allInnerTexts())}`);
      await page.screenshot({ path: join(shots, '08-rate-limited.png') });
    });
  } finally {
    await page.context().close();
  }
}

// The scripted model's paced stream (DESIGN "The scripted model"): 200 deltas of 16 letters, one
// every 50 ms, so the run lasts about 10 s unless it is stopped.
const LONG_STREAM = { deltas: 200, size: 16, delayMs: 50 };

/**
 * Stop: CopilotKit's Stop button, pressed while a long reply streams, must end agui-server's run
 * (recorded as `cancelled`), not just the page's view of it. The app sends the stop with the
 * signed-in user's token (src/App.tsx `StoppableChat`); CopilotKit's own stop carries none, so
 * the hop (hop mode) or agui-server (direct mode) refuses it and the run went on to `success`
 * (the failure this test catches).
 */
export async function runBrowserStop(h, stack, browser, shots) {
  const page = await newPage(browser, stack);
  const stops = [];
  const label = stack.mode === 'direct' ? 'browser (direct, stop)' : 'browser (stop)';
  page.on('response', (response) => {
    if (response.url().startsWith(stack.runtimeUrl) && /\/agent\/[^/]+\/stop\//.test(response.url())) {
      stops.push({ url: response.url(), status: response.status(), authorized: Boolean(response.request().headers().authorization) });
    }
  });
  const { deltas, size, delayMs } = LONG_STREAM;
  const fullLength = deltas * size;
  const reply = page.getByTestId('copilot-assistant-message').last();
  const sendButton = page.getByTestId('copilot-send-button');
  try {
    await step(h, page, shots, `${label}: the Stop button ends agui-server's run as cancelled and the reply stops growing`, async () => {
      await signIn(page, 'vera');
      const started = Date.now();
      await send(page, `/stream ${deltas} ${size} ${delayMs}`);
      // Some text has streamed: the first two deltas ("a" × size, then "b" × size).
      await reply.filter({ hasText: `${'a'.repeat(size)}${'b'.repeat(size)}` }).waitFor();
      await sendButton.locator('svg.lucide-square').waitFor(); // the button is CopilotKit's Stop now
      await page.getByRole('button', { name: 'Stop' }).click();

      await waitUntil(() => stops.length > 0, 'no stop request was sent');
      const [stop] = stops;
      const threadId = decodeURIComponent(stop.url.split('/stop/')[1]);

      // agui-server recorded the run as ended, and how: the cause, read from its audit log.
      let ended = [];
      await waitUntil(() => {
        ended = auditRecords(stack, { kind: 'run_ended', thread: threadId, since: started });
        return ended.length > 0;
      }, `agui-server recorded no end for thread ${threadId}`);
      assert(ended.length === 1 && ended[0].detail?.outcome === 'cancelled', `agui-server recorded: ${JSON.stringify(ended.map((r) => r.detail))}`);
      // With the user's token (CopilotKit's own stop has none and gets 401).
      assert(stops.length === 1 && stop.status === 200 && stop.authorized, `stop requests: ${JSON.stringify(stops)}`);

      // The page is idle again (the Stop icon is gone) and holds only part of the reply.
      await sendButton.locator('svg.lucide-square').waitFor({ state: 'detached' });
      const stopped = (await reply.innerText()).trim();
      assert(/^a+b+/.test(stopped) && stopped.length < fullLength, `the reply after Stop has ${stopped.length} of ${fullLength} characters`);
      // A later run in the same chat is answered; the stopped reply has not grown meanwhile.
      await send(page, 'hello after stop');
      await page.getByText('Hello, Vera Viewer! You said: "hello after stop"').waitFor();
      const after = (await page.getByTestId('copilot-assistant-message').filter({ hasText: /^a+b+/ }).first().innerText()).trim();
      assert(after === stopped, `the stopped reply grew from ${stopped.length} to ${after.length} characters`);
      // The cut-off reply says so; the complete one does not.
      const marked = await afterAssistantMessage(page, '^a+b+');
      assert(marked?.testid === 'stopped-marker' && marked.text === 'Stopped', `under the stopped reply: ${JSON.stringify(marked)}`);
      assert((await page.getByTestId('stopped-marker').count()) === 1, `${await page.getByTestId('stopped-marker').count()} "Stopped" markers`);
      assert(!(await page.getByRole('alert').isVisible()), `a problem banner: ${await page.getByRole('alert').innerText().catch(() => '')}`);
      await page.screenshot({ path: join(shots, stack.mode === 'direct' ? '15-direct-stopped.png' : '09-stopped.png') });
    });

    await step(h, page, shots, `${label}: after a reload the stopped run is replayed with its partial reply and no error`, async () => {
      await page.reload();
      await page.getByText('Hello, Vera Viewer! You said: "hello after stop"').waitFor();
      await chatReady(page); // the replay has ended: any error it carried has been reported by now
      const replayed = (await page.getByTestId('copilot-assistant-message').filter({ hasText: /^a+b+/ }).first().innerText()).trim();
      assert(/^a+b+/.test(replayed) && replayed.length < fullLength, `the replayed stopped reply has ${replayed.length} of ${fullLength} characters`);
      // Still marked: the replay ends that run with RUN_ERROR `abort` (agui-server's replay.rs).
      // The hop's replay (CopilotKit's runtime) sends that before the run's text and moves the
      // unfinished reply to the end of the thread, so there the marker is under the request.
      const marked = await afterAssistantMessage(page, '^a+b+');
      const request = await afterUserMessage(page, `/stream ${deltas} ${size} ${delayMs}`);
      assert(
        marked?.testid === 'stopped-marker' || (stack.mode === 'hop' && request?.testid === 'stopped-marker'),
        `under the replayed stopped reply: ${JSON.stringify(marked)}, under its request: ${JSON.stringify(request)}`,
      );
      assert((await page.getByTestId('stopped-marker').count()) === 1, `${await page.getByTestId('stopped-marker').count()} "Stopped" markers after the reload`);
      assert(!(await page.getByRole('alert').isVisible()), `a problem banner after the reload: ${await page.getByRole('alert').innerText().catch(() => '')}`);
    });
  } finally {
    await page.context().close();
  }
}

// The signed-in user's threads as agui-server lists them to her (`GET {runtime}/threads`).
async function threadsOf(stack, token) {
  const response = await fetch(`${stack.runtimeUrl}/threads`, { headers: { authorization: `Bearer ${token}` } });
  assert(response.status === 200, `GET /threads: HTTP ${response.status}`);
  return (await response.json()).threads;
}

// Polls `condition` (no fixed sleep); the harness's per-test limit bounds it.
export async function waitUntil(condition, message, everyMs = 200) {
  for (let i = 0; i < 250; i += 1) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
  throw new Error(message);
}

/**
 * Direct mode (the app's `runtimeUrl` is agui-server's `/copilotkit`): the conversation survives
 * a reload (the thread id is kept per user, CopilotKit's `connect` replays it from agui-server's
 * store), the sidebar lists the signed-in user's threads newest first as agui-server keeps them
 * and switches between them, and another user sees none of it, even with the first user's
 * thread id planted in her browser.
 */
export async function runBrowserDirect(h, stack, browser, shots) {
  assert(stack.mode === 'direct', 'not a direct stack');
  const page = await newPage(browser, stack);
  const viaWebServer = [];
  const runtime = [];
  page.on('request', (request) => {
    const url = request.url();
    if (url.startsWith(`${stack.webUrl}/api`)) viaWebServer.push(url);
    if (url.startsWith(stack.runtimeUrl)) runtime.push(`${request.method()} ${new URL(url).pathname.slice(new URL(stack.runtimeUrl).pathname.length)}`);
  });
  const tag = Math.random().toString(36).slice(2, 8);
  const first = `vera's first chat ${tag}`;
  const second = `vera's second chat ${tag}`;
  const answer = (name, text) => `Hello, ${name}! You said: "${text}"`;
  const userMessage = (text) => page.getByTestId('copilot-user-message').filter({ hasText: text });
  const assistantMessage = (text) => page.getByTestId('copilot-assistant-message').filter({ hasText: text });
  const shownThread = () => page.getByTestId('chat').getAttribute('data-thread-id');
  const listedIds = () => page.getByTestId('thread').evaluateAll((items) => items.map((el) => el.getAttribute('data-thread-id')));
  const veraThreads = [];
  try {
    await step(h, page, shots, "browser (direct): the viewer signs in and chats; the page talks to agui-server's /copilotkit and nothing goes through the web server", async () => {
      await signIn(page, 'vera');
      await send(page, first);
      await assistantMessage(answer('Vera Viewer', first)).waitFor();
      assert(runtime.includes('GET /info') && runtime.includes('POST /agent/default/run'), `runtime requests: ${runtime.join(', ')}`);
      assert(viaWebServer.length === 0, `requests to the web server's /api: ${viaWebServer.join(', ')}`);
      veraThreads.push(await shownThread());
    });

    await step(h, page, shots, 'browser (direct): after a reload the conversation is back: the same thread, connected and replayed by agui-server', async () => {
      const from = runtime.length;
      await page.reload();
      await page.getByTestId('identity-name').filter({ hasText: 'Vera Viewer' }).waitFor();
      await userMessage(first).waitFor();
      await assistantMessage(answer('Vera Viewer', first)).waitFor();
      await chatReady(page);
      assert((await shownThread()) === veraThreads[0], `the thread after the reload: ${await shownThread()}, before: ${veraThreads[0]}`);
      assert(runtime.slice(from).includes('POST /agent/default/connect'), `no connect after the reload: ${runtime.slice(from).join(', ')}`);
      await page.screenshot({ path: join(shots, '10-direct-reloaded.png') });
    });

    await step(h, page, shots, "browser (direct): the sidebar lists the viewer's threads newest first, as agui-server has them, and switching shows each conversation", async () => {
      await page.getByTestId('new-chat').click();
      await chatReady(page);
      const fresh = await shownThread();
      assert(fresh && !veraThreads.includes(fresh), `"New chat" kept the thread ${fresh}`);
      await page.getByRole('button', { name: 'Who am I?' }).waitFor(); // an empty chat offers the suggestions
      assert((await userMessage(first).count()) === 0, 'the new chat shows the old conversation');
      await send(page, second);
      await assistantMessage(answer('Vera Viewer', second)).waitFor();
      veraThreads.unshift(fresh);
      // Newest first: the chat just answered, then the one before it (older threads of hers,
      // from the contract tests on this stack, follow).
      await waitUntil(async () => (await listedIds())[0] === fresh, 'the new thread never came first in the sidebar');
      const ids = await listedIds();
      assert(JSON.stringify(ids.slice(0, 2)) === JSON.stringify(veraThreads), `the sidebar lists ${JSON.stringify(ids)}, expected ${JSON.stringify(veraThreads)} first`);
      // The same list, in the same order, as agui-server gives it to her.
      const listed = await threadsOf(stack, (await storedUser(page, stack)).access_token);
      assert(JSON.stringify(listed.map((t) => t.id)) === JSON.stringify(ids), `the sidebar lists ${JSON.stringify(ids)}, agui-server ${JSON.stringify(listed.map((t) => t.id))}`);
      const titles = await page.getByTestId('thread').locator('.thread-title').allInnerTexts();
      assert(titles[0] === second && titles[1] === first, `titles: ${JSON.stringify(titles)}`);
      await page.screenshot({ path: join(shots, '11-direct-threads.png') });

      await page.locator(`[data-testid=thread][data-thread-id="${veraThreads[1]}"]`).click();
      await userMessage(first).waitFor();
      await assistantMessage(answer('Vera Viewer', first)).waitFor();
      await chatReady(page);
      assert((await shownThread()) === veraThreads[1] && (await userMessage(second).count()) === 0, 'switching to the first thread');
      assert((await page.locator(`[data-testid=thread][data-thread-id="${veraThreads[1]}"]`).getAttribute('aria-current')) === 'true', 'the first thread is not marked current');
      await page.locator(`[data-testid=thread][data-thread-id="${veraThreads[0]}"]`).click();
      await assistantMessage(answer('Vera Viewer', second)).waitFor();
      await chatReady(page);
      assert((await shownThread()) === veraThreads[0] && (await userMessage(first).count()) === 0, 'switching back to the second thread');
    });

    await step(h, page, shots, "browser (direct): signed in as another user, none of the first user's threads or words appear; her own chat is listed (control)", async () => {
      await page.getByTestId('sign-out').click();
      await signIn(page, 'ada');
      await page.locator('[data-testid=threads][data-loaded=true]').waitFor();
      const mine = `ada's own chat ${tag}`;
      await send(page, mine);
      await assistantMessage(answer('Ada Lovelace', mine)).waitFor();
      // Control: her list works and shows her thread (after the run, once the list is refreshed).
      await page.getByTestId('thread').filter({ hasText: mine }).waitFor();
      await waitUntil(async () => (await listedIds())[0] === (await shownThread()), "ada's new thread never came first in her sidebar");
      const ids = await listedIds();
      const hers = await threadsOf(stack, (await storedUser(page, stack)).access_token);
      assert(JSON.stringify(hers.map((t) => t.id)) === JSON.stringify(ids), `ada's sidebar ${JSON.stringify(ids)}, agui-server ${JSON.stringify(hers.map((t) => t.id))}`);
      assert(!ids.some((id) => veraThreads.includes(id)), `ada's sidebar lists vera's threads: ${JSON.stringify(ids)}`);
      const text = await page.evaluate(() => document.body.innerText);
      assert(!text.includes(first) && !text.includes(second) && !text.includes('Vera Viewer'), "the first user's words are on the page");
      await page.screenshot({ path: join(shots, '12-direct-other-user.png') });
    });

    await step(h, page, shots, "browser (direct): another user's thread id planted in this user's storage replays nothing: agui-server refuses it (thread_not_found) and the page shows none of it", async () => {
      const since = Date.now();
      const key = `agui.thread:${JSON.stringify([stack.issuer, 'ada'])}`;
      await page.evaluate(([storageKey, id]) => window.localStorage.setItem(storageKey, id), [key, veraThreads[1]]);
      await page.reload();
      await page.getByTestId('identity-name').filter({ hasText: 'Ada Lovelace' }).waitFor();
      await page.getByTestId('problem-other').filter({ hasText: 'No such thread' }).waitFor();
      await chatReady(page);
      assert((await shownThread()) === veraThreads[1], 'the planted thread id was not used (the test would prove nothing)');
      const text = await page.evaluate(() => document.body.innerText);
      assert(!text.includes(first) && !text.includes(second), "the first user's words are on the page");
      // The cause, in agui-server's audit log: an ownership refusal for ada on vera's thread.
      let denials = [];
      await waitUntil(() => {
        denials = auditRecords(stack, { kind: 'access_denied', thread: veraThreads[1], since }).filter((r) => r.subject === 'ada' && r.detail?.reason === 'thread_ownership');
        return denials.length > 0;
      }, 'agui-server recorded no ownership refusal');
      await page.screenshot({ path: join(shots, '13-direct-planted-thread.png') });
      // "New chat" gets her a chat of her own again.
      await page.getByTestId('new-chat').click();
      await chatReady(page);
      await page.getByRole('button', { name: 'Who am I?' }).waitFor();
    });
  } finally {
    await page.context().close();
  }
}
