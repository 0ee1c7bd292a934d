// Every shell page, in Debian's Chromium through the real proxy and agent (demo mode), at a
// desktop size and at 375 px: axe-core finds no WCAG level A/AA violation, nothing scrolls
// sideways, and every visible control is reachable with Tab. Screenshots of each page at both
// sizes go to artifacts/a11y-*.png.
//
// Adding a page: put an entry in PAGES, in the order the session reaches it. `setup` runs once
// (change state: sign in, install…); `open` runs at each size and must leave the page ready.
// Needs `cargo build --workspace --bins` and `cd web && npm run build` first.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { axeViolations, DESKTOP, PHONE, sidewaysOverflow, unreachableByTab } from './a11y.mjs';
import { createFirstUser, noChromium, openBrowser, shot, startInstalls } from './browser.mjs';
import { startSystem } from './system.mjs';

const USER = 'ada';
const PASSWORD = 'correct horse battery';
const APP = 'adguard-home';
const NAME = 'AdGuard Home';

/** @type {Array<{name: string, setup?: (t) => Promise<void>, open: (t) => Promise<void>, iframes?: boolean}>} */
const PAGES = [
  {
    name: 'setup',
    open: async ({ page, base }) => {
      await page.goto(base + '/setup');
      await page.getByRole('heading', { name: 'Welcome to Bloud' }).waitFor();
    },
  },
  {
    name: 'login',
    setup: async ({ page, base }) => {
      await createFirstUser(page, base, USER, PASSWORD);
      await page.getByRole('button', { name: 'Sign out' }).click();
    },
    open: async ({ page, base }) => {
      await page.goto(base + '/login');
      await page.getByRole('heading', { name: 'Sign in to Bloud' }).waitFor();
    },
  },
  {
    name: 'home-empty',
    setup: async ({ page }) => {
      await page.getByLabel('Username').fill(USER);
      await page.getByLabel('Password').fill(PASSWORD);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByText('No apps installed yet.').waitFor();
    },
    open: async ({ page, base }) => {
      await page.goto(base + '/');
      await page.getByText('No apps installed yet.').waitFor();
    },
  },
  {
    name: 'catalog',
    open: async ({ page, base }) => {
      await page.goto(base + '/catalog');
      await page.getByRole('heading', { name: 'Jellyfin', exact: true }).waitFor();
    },
  },
  {
    name: 'catalog-no-match',
    open: async ({ page, base }) => {
      await page.goto(base + '/catalog?q=no-such-app-anywhere');
      await page.getByText('No app matches.').waitFor();
    },
  },
  {
    name: 'app-detail',
    open: async ({ page, base }) => {
      await page.goto(base + '/catalog/radarr');
      await page.getByRole('heading', { name: 'Radarr', level: 1 }).waitFor();
      await page.getByText('Data location').waitFor();
    },
  },
  {
    name: 'install-dialog',
    open: async ({ page, base }) => {
      await page.goto(base + '/catalog');
      const card = page.getByRole('article').filter({ has: page.getByRole('heading', { name: NAME, exact: true }) });
      await card.getByRole('button', { name: 'Install' }).click();
      await page.getByRole('dialog', { name: `Install ${NAME}` }).waitFor();
    },
  },
  {
    name: 'step-up',
    open: async ({ page, base }) => {
      await page.goto(base + '/catalog');
      const card = page.getByRole('article').filter({ has: page.getByRole('heading', { name: 'Jellyfin', exact: true }) });
      await card.getByRole('button', { name: 'Delete data' }).click();
      await page.getByRole('dialog', { name: 'Confirm with your password' }).waitFor();
    },
  },
  {
    name: 'install-progress',
    setup: async ({ page, base }) => {
      await page.goto(base + '/');
      await startInstalls(page, [APP]);
    },
    open: async ({ page, base }) => {
      await page.goto(base + `/install/${APP}`);
      await page.getByRole('log').getByText(/building|Rebuild/).first().waitFor();
    },
  },
  {
    name: 'home',
    open: async ({ page, base }) => {
      await page.goto(base + '/');
      await page.getByRole('link', { name: `${NAME}, running` }).waitFor({ timeout: 60_000 });
    },
  },
  {
    name: 'app-frame',
    // The embedded app is third-party content; what is checked is the shell around it.
    iframes: false,
    open: async ({ page, base }) => {
      await page.goto(base + `/apps/${APP}/`);
      await page.frameLocator('iframe.app-frame').getByRole('heading', { name: APP, level: 1 }).waitFor();
    },
  },
  {
    name: 'users',
    open: async ({ page, base }) => {
      await page.goto(base + '/users');
      await page.getByRole('heading', { name: 'Users', level: 1 }).waitFor();
      await page.getByText(USER).first().waitFor();
    },
  },
  {
    name: 'not-found',
    open: async ({ page, base }) => {
      await page.goto(base + '/no/such/page');
      await page.getByRole('heading', { name: 'Not found' }).waitFor();
    },
  },
];

let sys;
let browser;
let broken = null;

before(async () => {
  if (noChromium) return;
  sys = await startSystem();
  browser = await openBrowser(DESKTOP);
});

after(async () => {
  if (broken && sys) console.error(sys.logs());
  await browser?.close();
  await sys?.stop();
});

for (const entry of PAGES) {
  test(`${entry.name}: no axe A/AA violations, fits 375 px, every control reachable by Tab`, { skip: noChromium, timeout: 120_000 }, async () => {
    if (broken) throw new Error(`not run: setting up ${broken} failed`);
    const t = { page: browser.page, base: sys.base, sys };
    try {
      await t.page.setViewportSize(DESKTOP);
      await entry.setup?.(t);
    } catch (e) {
      broken = entry.name;
      await shot(t.page, `a11y-failed-setup-${entry.name}`).catch(() => {});
      throw e;
    }
    const problems = [];
    for (const [size, viewport] of [['desktop', DESKTOP], ['375px', PHONE]]) {
      await t.page.setViewportSize(viewport);
      await entry.open(t);
      await shot(t.page, `a11y-${entry.name}-${size}`);
      for (const v of await axeViolations(t.page, { iframes: entry.iframes ?? false })) problems.push(`[${size}] axe: ${v}`);
      const overflow = await sidewaysOverflow(t.page);
      if (overflow > 0) problems.push(`[${size}] the page is ${overflow}px wider than the window`);
      for (const m of await unreachableByTab(t.page)) problems.push(`[${size}] not reachable with Tab: ${m}`);
    }
    assert.deepEqual(problems, [], `${entry.name}:\n${problems.join('\n')}`);
  });
}
