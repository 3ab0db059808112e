// Real-browser tests of the chat's chrome (src/Transcript.tsx, src/styles.css, web/public): a
// failed run's error in the transcript under the message that failed, Retry, the error cleared
// by a later successful run; the composer's controls and their names; the favicon; the layout on
// a 360 px phone. Run on the direct-mode stack (web/e2e/run.mjs, stack F).

import { join } from 'node:path';

import { afterUserMessage, chatReady, newPage, send, signIn, step } from './browser.mjs';
import { assert } from './harness.mjs';
import { WEB_DIR } from '../scripts/stack.mjs';

// The page's run requests (CopilotKit's `POST {runtime}/agent/<id>/run`).
const RUN_REQUEST = /\/agent\/[^/]+\/run$/;

/**
 * @param {import('./harness.mjs').Harness} h
 * @param {import('../scripts/stack.mjs').Stack} stack
 * @param {import('playwright-core').Browser} browser
 * @param {string} shots
 */
export async function runBrowserChrome(h, stack, browser, shots) {
  const page = await newPage(browser, stack);
  const tag = Math.random().toString(36).slice(2, 8);
  const answer = (text) => page.getByTestId('copilot-assistant-message').filter({ hasText: `Hello, Vera Viewer! You said: "${text}"` });
  const runError = page.getByTestId('run-error');
  const runs = [];
  page.on('request', (request) => {
    if (request.method() === 'POST' && RUN_REQUEST.test(new URL(request.url()).pathname)) runs.push(request.url());
  });
  // The runtime unreachable for the page's runs (the connection refused), until `reachable()`.
  const unreachable = () => page.route(RUN_REQUEST, (route) => route.abort('connectionrefused'));
  const reachable = () => page.unroute(RUN_REQUEST);
  try {
    const failed = `the runtime is away ${tag}`;
    await step(h, page, shots, 'browser (chrome): a failed run shows its error under the message that failed, with Retry; no banner, no blank reply', async () => {
      await signIn(page, 'vera');
      await unreachable();
      const before = runs.length;
      await send(page, failed);
      await runError.waitFor();
      assert(runs.length === before + 1, `run requests: ${runs.length - before}`);
      const next = await afterUserMessage(page, failed);
      assert(next?.testid === 'run-error' && next.kind === 'other', `under the failed message: ${JSON.stringify(next)}`);
      await page.getByRole('button', { name: 'Retry' }).waitFor();
      assert((await page.getByTestId('copilot-assistant-message').count()) === 0, 'a reply is shown for the failed run');
      for (const id of ['problem-other', 'problem-forbidden', 'problem-expired']) {
        assert((await page.getByTestId(id).count()) === 0, `a banner (${id}) for a run error`);
      }
      await page.screenshot({ path: join(shots, '16-run-error-inline.png') });
    });

    await step(h, page, shots, 'browser (chrome): Retry runs the failed message again; once answered, the error is gone', async () => {
      await reachable();
      const before = runs.length;
      await page.getByRole('button', { name: 'Retry' }).click();
      await answer(failed).waitFor();
      await runError.waitFor({ state: 'detached' });
      assert(runs.length === before + 1, `run requests for Retry: ${runs.length - before}`);
      // The same message, answered once: not sent a second time.
      const sent = await page.getByTestId('copilot-user-message').filter({ hasText: failed }).count();
      assert(sent === 1 && (await answer(failed).count()) === 1, `the message is shown ${sent} time(s), answered ${await answer(failed).count()} time(s)`);
    });

    await step(h, page, shots, "browser (chrome): a model failure (/fail) shows agui-server's RUN_ERROR under its message, no blank reply; it stays until a later run succeeds", async () => {
      // The scripted model's `/fail`: agui-server's own RUN_ERROR model_error, mid-run.
      const lost = '/fail';
      const later = `later ${tag}`;
      await chatReady(page);
      const replies = await page.getByTestId('copilot-assistant-message').count();
      await send(page, lost);
      await runError.waitFor();
      const under = await afterUserMessage(page, lost);
      assert(under?.testid === 'run-error' && under.kind === 'other' && under.text.replace(/Retry$/, '').trim().length > 0, `under the failed message: ${JSON.stringify(under)}`);
      assert((await page.getByTestId('copilot-assistant-message').count()) === replies, 'the failed run left a reply');
      await chatReady(page);
      await send(page, later);
      await answer(later).waitFor();
      await runError.waitFor({ state: 'detached' });
      assert((await answer(lost).count()) === 0, 'the failed message was answered');
      const next = await afterUserMessage(page, lost);
      assert(next?.testid === 'copilot-user-message', `after the failed message: ${JSON.stringify(next)}`);
    });

    await step(h, page, shots, 'browser (chrome): the composer has no dead "+"; its send and stop buttons are named', async () => {
      assert((await page.getByTestId('copilot-add-menu-button').count()) === 0, 'the always-disabled "+" is shown');
      const sendButton = page.getByRole('button', { name: 'Send message' });
      await sendButton.waitFor();
      assert((await sendButton.getAttribute('data-testid')) === 'copilot-send-button', 'the named button is not the send button');
      await send(page, '/stream 200 16 50');
      const stop = page.getByRole('button', { name: 'Stop' });
      await stop.waitFor();
      assert((await page.getByRole('button', { name: 'Send message' }).count()) === 0, 'the Stop button is still named Send');
      await stop.click();
      await page.getByTestId('stopped-marker').last().waitFor();
      await page.getByRole('button', { name: 'Send message' }).waitFor();
    });

    await step(h, page, shots, 'browser (chrome): /favicon.ico is an image from the built app and from the dev server; agui-server logs nothing for its own', async () => {
      const built = await page.request.get(`${stack.webUrl}/favicon.ico`);
      assert(built.status() === 200 && /^image\//.test(built.headers()['content-type'] ?? ''), `built app: ${built.status()} ${built.headers()['content-type']}`);
      const icon = await built.body();
      assert(icon.readUInt16LE(0) === 0 && icon.readUInt16LE(2) === 1 && icon.readUInt16LE(4) > 0, 'not an ICO file');
      // The page names it (no icon request left to guess).
      assert((await page.locator('link[rel=icon]').getAttribute('href')) === '/favicon.ico', 'the page links another icon');
      // Vite's dev server serves web/public at the root too.
      const { createServer } = await import('vite');
      const dev = await createServer({ root: WEB_DIR, logLevel: 'silent', server: { host: '127.0.0.1', port: 0, strictPort: false, hmr: false } });
      try {
        await dev.listen();
        const devUrl = dev.resolvedUrls?.local[0];
        assert(devUrl, 'the dev server has no URL');
        const served = await fetch(new URL('/favicon.ico', devUrl));
        const devIcon = Buffer.from(await served.arrayBuffer());
        assert(served.status === 200 && /^image\//.test(served.headers.get('content-type') ?? ''), `dev server: ${served.status} ${served.headers.get('content-type')}`);
        assert(devIcon.equals(icon), 'the dev server serves another icon');
      } finally {
        await dev.close();
      }
      // A browser that opens agui-server's own pages asks it too: a plain 404, no warning or error in its log.
      const logged = stack.logs().length;
      const own = await fetch(`${stack.aguiUrl}/favicon.ico`);
      assert(own.status === 404 && (await own.json()).error === 'not_found', `agui-server's /favicon.ico: ${own.status}`);
      const health = await fetch(`${stack.aguiUrl}/healthz`); // the log has caught up with the request before it
      assert(health.status === 200, `healthz: ${health.status}`);
      const loud = stack.logs().slice(logged).filter((line) => line.startsWith('agui-server:') && /\b(WARN|ERROR)\b/.test(line));
      assert(loud.length === 0, `agui-server logged: ${loud.join(' | ')}`);
    });

    await step(h, page, shots, 'browser (chrome): on a 360×740 phone the title is one line, Sign out is on screen, nothing overlaps or scrolls sideways', async () => {
      await page.setViewportSize({ width: 360, height: 740 });
      await chatReady(page);
      await page.screenshot({ path: join(shots, '17-phone-360.png') });
      const layout = await page.evaluate(() => {
        const box = (el) => {
          const r = el.getBoundingClientRect();
          return { left: r.left, top: r.top, right: r.right, bottom: r.bottom, width: r.width, height: r.height };
        };
        const title = document.querySelector('.topbar h1');
        // One line: every fragment of the title's visible text on the same line box.
        const lines = new Set();
        const walker = document.createTreeWalker(title, NodeFilter.SHOW_TEXT);
        for (let node = walker.nextNode(); node; node = walker.nextNode()) {
          const range = document.createRange();
          range.selectNodeContents(node);
          for (const r of range.getClientRects()) if (r.width > 0 && node.textContent.trim()) lines.add(Math.round(r.bottom));
        }
        return {
          title: box(title),
          titleLines: lines.size,
          right: box(document.querySelector('.topbar-right')),
          identity: box(document.querySelector('[data-testid=identity]')),
          signOut: box(document.querySelector('[data-testid=sign-out]')),
          chat: box(document.querySelector('[data-testid=chat]')),
          input: box(document.querySelector('[data-testid=chat] textarea')),
          scrollWidth: document.documentElement.scrollWidth,
        };
      });
      const inside = (b) => b.left >= 0 && b.top >= 0 && b.right <= 360 && b.bottom <= 740 && b.width > 0 && b.height > 0;
      const apart = (a, b) => a.right <= b.left || b.right <= a.left || a.bottom <= b.top || b.bottom <= a.top;
      assert(inside(layout.signOut), `Sign out at ${JSON.stringify(layout.signOut)}`);
      assert(layout.titleLines === 1, `the title takes ${layout.titleLines} lines`);
      assert(apart(layout.title, layout.right) && apart(layout.identity, layout.signOut), `the top bar overlaps: ${JSON.stringify(layout)}`);
      assert(inside(layout.input) && layout.chat.right <= 360, `the chat at ${JSON.stringify(layout.chat)}, its input at ${JSON.stringify(layout.input)}`);
      assert(layout.scrollWidth <= 360, `the page is ${layout.scrollWidth} px wide`);
      // The chat still works at this width.
      const small = `from a phone ${tag}`;
      await send(page, small);
      await answer(small).waitFor();
      await page.setViewportSize({ width: 1180, height: 820 });
    });
  } finally {
    await page.context().close();
  }
}
