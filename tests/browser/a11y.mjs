// Checks any shell page can be put through: axe-core (WCAG 2.x level A and AA rules), a layout
// that fits a 375 px wide phone without sideways scrolling, and every visible control reachable
// with the Tab key. Used by a11y.test.mjs (every page) and by feature tests for their pages.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const WCAG_A_AA = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'];

export const DESKTOP = { width: 1280, height: 860 };
export const PHONE = { width: 375, height: 740 };

/**
 * axe-core's level A/AA violations on the page as it is now, as readable lines (empty: none).
 * `iframes: false` leaves an embedded app's own document out (the shell is what is checked).
 */
export async function axeViolations(page, { iframes = false } = {}) {
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.addScriptTag({ content: AXE_SOURCE });
  const result = await page.evaluate(
    ([tags, iframes]) => window.axe.run(document, { runOnly: { type: 'tag', values: tags }, iframes, resultTypes: ['violations'] }),
    [WCAG_A_AA, iframes],
  );
  return result.violations.flatMap((v) =>
    v.nodes.map((n) => `${v.id} (${v.impact}): ${v.help} at ${n.target.join(' ')}: ${n.failureSummary?.replace(/\s+/g, ' ')}`),
  );
}

/** How many CSS pixels the page is wider than the viewport (0: nothing scrolls sideways). */
export async function sidewaysOverflow(page) {
  return page.evaluate(() => {
    const el = document.scrollingElement ?? document.documentElement;
    return Math.max(0, el.scrollWidth - el.clientWidth);
  });
}

/**
 * Presses Tab through the page (or the open modal dialog) and returns the visible, enabled
 * controls it never reached, described by role and name (empty: all reachable).
 */
export async function unreachableByTab(page) {
  const targets = await page.evaluate(() => {
    const scope = document.querySelector('dialog[open]') ?? document;
    const sel = 'a[href], button, input:not([type=hidden]), select, textarea, [tabindex]:not([tabindex="-1"]), iframe';
    const list = [...scope.querySelectorAll(sel)].filter((el) => {
      if (el.disabled || el.closest('[inert]')) return false;
      // A menu is one composite widget (WAI-ARIA menu pattern): its items are reached with the
      // arrow keys from the menu button, never with Tab (tabs.test.mjs drives them by keyboard).
      if (el.closest('[role="menu"]')) return false;
      const r = el.getBoundingClientRect();
      const style = getComputedStyle(el);
      return r.width > 0 && r.height > 0 && style.visibility !== 'hidden';
    });
    // Radio groups take one Tab stop: the checked radio (or the first) stands for the group.
    const seenGroups = new Set();
    const keep = list.filter((el) => {
      if (el.type !== 'radio') return true;
      if (seenGroups.has(el.name)) return false;
      seenGroups.add(el.name);
      return true;
    });
    keep.forEach((el, i) => el.setAttribute('data-tab-target', String(i)));
    return keep.length;
  });
  const reached = new Set();
  for (let i = 0; i < targets * 2 + 6 && reached.size < targets; i++) {
    await page.keyboard.press('Tab');
    const idx = await page.evaluate(() => {
      let el = document.activeElement;
      if (el?.type === 'radio' && el.name) {
        const first = document.querySelector(`input[type=radio][name="${CSS.escape(el.name)}"][data-tab-target]`);
        if (first) el = first;
      }
      return el?.getAttribute?.('data-tab-target') ?? null;
    });
    if (idx !== null) reached.add(idx);
  }
  return page.evaluate((reachedList) => {
    const got = new Set(reachedList);
    const missing = [...document.querySelectorAll('[data-tab-target]')]
      .filter((el) => !got.has(el.getAttribute('data-tab-target')))
      .map((el) => `${el.tagName.toLowerCase()} "${(el.getAttribute('aria-label') ?? el.textContent ?? el.value ?? '').trim().slice(0, 40)}"`);
    document.querySelectorAll('[data-tab-target]').forEach((el) => el.removeAttribute('data-tab-target'));
    return missing;
  }, [...reached]);
}
