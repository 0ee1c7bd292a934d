// A walk-through: one Bloud system (system.mjs), one Chromium profile (browser.mjs) and steps that
// run in order as one person's session. After a failed step the later ones are reported as not
// run (they would only time out), a screenshot of what the person saw is kept in artifacts/, and
// the system's logs are printed once at the end.
import { after, before, test } from 'node:test';
import { artifacts, noChromium, openBrowser } from './browser.mjs';
import { startSystem } from './system.mjs';

/**
 * Registers the suite's before/after hooks and returns `{ step, session }`. `session` holds
 * `sys`, `context` and `page` once the system and browser are up; `ready` gets them too, so a
 * suite can keep them in its own variables.
 *
 * @param {{ prefix: string, system?: object, pageTimeout?: number, stepTimeout?: number,
 *           ready?: (s: { sys: any, context: any, page: any }) => void }} options
 */
export function walkThrough({ prefix, system = {}, pageTimeout = 20_000, stepTimeout = 120_000, ready }) {
  const session = { sys: null, context: null, page: null, browser: null, failed: false };

  before(async () => {
    if (noChromium) return;
    session.sys = await startSystem(system);
    session.browser = await openBrowser();
    session.context = session.browser.context;
    session.page = session.browser.page;
    session.page.setDefaultTimeout(pageTimeout);
    ready?.(session);
  });

  after(async () => {
    if (session.failed && session.sys) console.error(session.sys.logs());
    await session.browser?.close();
    await session.sys?.stop();
  });

  function step(name, fn, timeout = stepTimeout) {
    test(name, { skip: noChromium, timeout }, async () => {
      if (session.failed) throw new Error('not run: an earlier step failed (see its error and screenshot)');
      try {
        await fn();
      } catch (e) {
        session.failed = true;
        const file = `${artifacts}${prefix}failed-${name.replace(/\W+/g, '-')}.png`;
        await session.page?.screenshot({ path: file, fullPage: true }).catch(() => {});
        throw e;
      }
    });
  }

  return { step, session };
}
