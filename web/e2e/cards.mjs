// Real-browser tests of what the chat shows besides text (issue #15): tool cards rendered from the
// tool's result (a refused colour is a refusal, not an empty swatch), the shared-state panel fed
// by STATE_SNAPSHOT/STATE_DELTA, suggestions that stay after the first reply, and the scripted
// model's help. Run on the direct stack (what `make run` uses) by e2e/run.mjs.

import { join } from 'node:path';

import { chatReady, newPage, send, signIn, step } from './browser.mjs';
import { assert } from './harness.mjs';

/**
 * @param {import('./harness.mjs').Harness} h
 * @param {any} stack
 * @param {import('playwright-core').Browser} browser
 * @param {string} shots
 */
export async function runBrowserCards(h, stack, browser, shots) {
  const page = await newPage(browser, stack);
  const chat = page.getByTestId('chat');
  const assistant = (text) => page.getByTestId('copilot-assistant-message').filter({ hasText: text });
  const suggestion = (name) => page.getByRole('button', { name, exact: true });
  const accent = () => page.evaluate(() => getComputedStyle(document.documentElement).getPropertyValue('--app-accent').trim());
  const panel = page.getByTestId('state-panel');
  try {
    await step(h, page, shots, 'browser (cards): "Change the accent colour to notacolour" shows the tool\'s refusal (invalid colour, nothing changed), no swatch', async () => {
      await signIn(page, 'vera');
      const before = await accent();
      await send(page, 'Change the accent colour to notacolour');
      const card = chat.locator('[data-testid=card-error][data-tool=change_accent_color]');
      await card.waitFor();
      const text = await card.innerText();
      assert(text.includes('Refused') && text.includes('"notacolour" is not a CSS colour; the accent is unchanged'), `refusal card: ${text}`);
      assert((await card.getAttribute('data-code')) === 'invalid_color', `code: ${await card.getAttribute('data-code')}`);
      // The reply reads the refusal too, in a sentence.
      await assistant('That colour was refused: "notacolour" is not a CSS colour; the accent is unchanged.').waitFor();
      assert((await chat.getByTestId('card-accent').count()) === 0, 'a success card was shown for the refused colour');
      assert((await chat.locator('.swatch').count()) === 0, 'a swatch was shown for the refused colour');
      assert((await accent()) === before, `the accent changed: ${before} → ${await accent()}`);
      await page.screenshot({ path: join(shots, '20-cards-refused-colour.png') });
    });

    await step(h, page, shots, 'browser (cards): the suggestions are offered again after the first reply', async () => {
      // Offered once the run has ended (CopilotKit hides them while one is going on).
      await chatReady(page);
      for (const name of ['Who am I?', 'List my documents', 'Set my theme to dark', 'What can you do?']) await suggestion(name).waitFor();
      assert((await page.getByTestId('copilot-assistant-message').count()) >= 1, 'no reply before the suggestions');
    });

    await step(h, page, shots, 'browser (cards): the "Set my theme to dark" suggestion updates the shared-state panel (STATE_SNAPSHOT/DELTA) and shows a preference card', async () => {
      // Control: nothing in the state before the preference.
      assert((await panel.getByTestId('state-row').count()) === 0, `state before: ${await panel.innerText()}`);
      await suggestion('Set my theme to dark').click();
      const card = chat.locator('[data-testid=card-preference][data-key=theme]');
      await card.waitFor();
      assert((await card.innerText()).includes('dark'), `preference card: ${await card.innerText()}`);
      await panel.locator('[data-testid=state-row][data-key=theme]').filter({ hasText: 'dark' }).waitFor();
      await assistant('Your theme is now dark.').waitFor();
      await page.screenshot({ path: join(shots, '21-cards-state-panel.png') });
    });

    await step(h, page, shots, 'browser (cards): "What can you do?" gets the scripted help, not an echo', async () => {
      await chatReady(page);
      await suggestion('What can you do?').click();
      const help = assistant('I am the scripted demo model');
      await help.waitFor();
      await chatReady(page);
      const text = await help.innerText();
      for (const expected of ['Who am I?', 'List my documents', 'Set my theme to dark', 'Change the accent colour to teal', '/stream']) {
        assert(text.includes(expected), `the help does not mention ${expected}: ${text}`);
      }
      assert(!text.includes('You said'), `the help is an echo: ${text}`);
      // The viewer may not delete: the help lists only what she may use.
      assert(!text.includes('Delete document'), `the help offers the viewer a delete: ${text}`);
    });

    await step(h, page, shots, 'browser (cards): "Show document 99" shows the not-found refusal from the result', async () => {
      await send(page, 'Show document 99');
      const card = chat.locator('[data-testid=card-error][data-tool=get_document]');
      await card.waitFor();
      assert((await card.getAttribute('data-code')) === 'not_found' && (await card.innerText()).includes('you have no document 99'), `card: ${await card.innerText()}`);
      assert((await chat.getByTestId('card-document').count()) === 0, 'a document card was shown for a missing document');
      await assistant('Not found: you have no document 99.').waitFor();
    });

    await step(h, page, shots, 'browser (cards): the panel shows the thread\'s state after a reload (replayed) and nothing in a new chat', async () => {
      await chatReady(page);
      await page.reload();
      await chatReady(page);
      await panel.locator('[data-testid=state-row][data-key=theme]').filter({ hasText: 'dark' }).waitFor();
      await page.getByTestId('new-chat').click();
      await chatReady(page);
      await panel.filter({ hasText: 'Nothing yet' }).waitFor();
      assert((await panel.getByTestId('state-row').count()) === 0, `a new chat shows state: ${await panel.innerText()}`);
    });
  } finally {
    await page.context().close();
  }
}
