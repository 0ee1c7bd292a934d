// A person's first session with a real Bloud system, in Debian's Chromium: bloud-proxy in front,
// bloud-agent (demo rebuilds) behind it, the built shell from web/dist. Create the first user,
// sign out and in again, open the catalog, install a demo app, watch the progress and the live
// rebuild log, open the app: the shell shows it in an iframe under /embed/<app>/ with the app's
// own content, and links inside it stay inside it. Screenshots go to artifacts/ (gitignored).
//
// Needs `cargo build --workspace --bins` and `cd web && npm run build` first (scripts/test does
// both before it runs this). Skips, with the reason, only when /usr/bin/chromium is missing.
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { artifacts } from './browser.mjs';
import { walkThrough } from './walk.mjs';

const APP = 'adguard-home';
const NAME = 'AdGuard Home';
const USER = 'alice';
const PASSWORD = 'correct horse battery';

let sys;
let context;
let page;

async function shot(name) {
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
}

const { step } = walkThrough({
  prefix: '',
  pageTimeout: 20_000,
  stepTimeout: 90_000,
  ready: (s) => ({ sys, context, page } = s),
});

step('first visit asks for the first user, then shows an empty home', async () => {
  await page.goto(sys.base + '/');
  await page.waitForURL(sys.base + '/setup');
  await page.getByRole('heading', { name: 'Welcome to Bloud' }).waitFor();
  await page.getByLabel('Username').fill(USER);
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByLabel('Repeat the password').fill(PASSWORD);
  await shot('01-setup');
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.waitForURL(sys.base + '/');
  await page.getByText('No apps installed yet.').waitFor();
  await page.getByText(USER).first().waitFor();
});

step('sign out, then sign in with the new account', async () => {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Sign in to Bloud' }).waitFor();
  // Signed out for real: the API refuses the old browser state.
  const status = await page.evaluate(() => fetch('/api/apps/installed').then((r) => r.status));
  assert.equal(status, 401);
  await page.getByLabel('Username').fill(USER);
  await page.getByLabel('Password').fill('wrong password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText(/(wrong|invalid) username or password/i).waitFor();
  await page.getByLabel('Password').fill(PASSWORD);
  await shot('02-login');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(sys.base + '/');
  await page.getByText('No apps installed yet.').waitFor();
  const cookies = await context.cookies(sys.base);
  const session = cookies.find((c) => c.name === 'bloud_session');
  assert.ok(session, 'bloud_session cookie set');
  assert.equal(session.httpOnly, true);
});

step('the catalog lists the apps; installing one shows progress and the live log', async () => {
  await page.getByRole('link', { name: 'Catalog' }).first().click();
  await page.waitForURL(sys.base + '/catalog');
  const card = page.getByRole('article').filter({ has: page.getByRole('heading', { name: NAME, exact: true }) });
  await card.waitFor();
  await page.getByRole('heading', { name: 'Jellyfin', exact: true }).waitFor();
  await shot('03-catalog');
  await card.getByRole('button', { name: 'Install' }).click();
  const dialog = page.getByRole('dialog', { name: `Install ${NAME}` });
  await dialog.waitFor();
  await dialog.getByRole('button', { name: 'Install' }).click();
  await page.waitForURL(sys.base + `/install/${APP}`);
  const log = page.getByRole('log');
  // Lines of the demo rebuild arrive while it runs (BLOUD_DEMO_STEP_MS paces them).
  await log.getByText(new RegExp(`building .*${APP}`)).waitFor();
  await page.locator('p.phase', { hasText: /Installing/ }).waitFor();
  await shot('04-installing');
  await log.getByText('Rebuild completed successfully').waitFor({ timeout: 60_000 });
  await page.locator('p.phase', { hasText: /^Running$/ }).waitFor({ timeout: 60_000 });
  await shot('05-installed');
});

step('open the app: the shell embeds it under /embed/<app>/ and its content is visible', async () => {
  await page.getByRole('link', { name: `Open ${NAME}` }).click();
  await page.waitForURL(sys.base + `/apps/${APP}/`);
  const iframe = page.locator('iframe.app-frame');
  await iframe.waitFor();
  const frame = page.frameLocator('iframe.app-frame');
  await frame.getByRole('heading', { name: APP, level: 1 }).waitFor();
  await frame.getByText(`A Bloud demo app standing in for ${APP}.`).waitFor();
  const inner = page.frames().find((f) => new URL(f.url()).pathname.startsWith(`/embed/${APP}/`));
  assert.ok(inner, `a frame under /embed/${APP}/ (frames: ${page.frames().map((f) => f.url()).join(', ')})`);
  assert.equal(new URL(inner.url()).origin, sys.base, 'the app is same-origin with the shell');
  // The app's stylesheet (a root-absolute /style.css in its HTML) loaded from inside the app.
  const bg = await inner.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.equal(bg, 'rgb(246, 248, 250)', 'the app stylesheet applied');
  await shot('06-app-embedded');

  // A root-absolute link inside the app stays inside it, and the shell URL follows.
  await frame.getByRole('link', { name: 'Settings' }).click();
  await frame.getByText('This page is /settings.').waitFor();
  await page.waitForURL(sys.base + `/apps/${APP}/settings`);
  const now = page.frames().find((f) => f.url().includes(`/embed/${APP}/`));
  assert.ok(now, 'the app frame is still under /embed/');
  assert.equal(new URL(now.url()).pathname, `/embed/${APP}/settings`);
  await shot('07-app-settings');
});

step('home shows the installed app as running', async () => {
  await page.getByRole('link', { name: 'Home' }).first().click();
  await page.waitForURL(sys.base + '/');
  await page.getByRole('link', { name: `${NAME}, running` }).waitFor();
  await shot('08-home');
});

step('signed out, opening the app itself goes to the login and back to the app after it', async () => {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Sign in to Bloud' }).waitFor();
  // The app's route is behind Bloud's login: the proxy answers the navigation with the login.
  await page.goto(sys.base + `/embed/${APP}/settings?tab=1`);
  await page.waitForURL((u) => u.pathname === '/login' && u.searchParams.get('next') === `/embed/${APP}/settings?tab=1`);
  await page.getByRole('heading', { name: 'Sign in to Bloud' }).waitFor();
  await shot('08b-login-for-app');
  await page.getByLabel('Username').fill(USER);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(sys.base + `/embed/${APP}/settings?tab=1`);
  await page.getByText('This page is /settings.').waitFor();
  // The app never sees the shell's session, only who the user is.
  const seen = await page.locator('body').innerText();
  assert.match(seen, new RegExp(`remote-user: ${USER}`));
  assert.doesNotMatch(seen, /bloud_session/);
  await page.goto(sys.base + '/');
  await page.getByRole('link', { name: `${NAME}, running` }).waitFor();
});

step('uninstall from the catalog: the app is gone from home and its frame says so', async () => {
  await page.getByRole('link', { name: 'Catalog' }).first().click();
  await page.waitForURL(sys.base + '/catalog');
  const card = page.getByRole('article').filter({ has: page.getByRole('heading', { name: NAME, exact: true }) });
  await card.getByRole('button', { name: 'Uninstall' }).click();
  const dialog = page.getByRole('dialog', { name: `Uninstall ${NAME}` });
  await dialog.getByRole('button', { name: 'Uninstall' }).click();
  await page.waitForURL(sys.base + `/install/${APP}?op=uninstall`);
  await page.locator('p.phase', { hasText: /^Removed$/ }).waitFor({ timeout: 60_000 });
  await shot('09-removed');
  await page.getByRole('link', { name: 'Back to home' }).click();
  await page.getByText('No apps installed yet.').waitFor();
  // An old bookmark to the app: the frame shows the agent's page, not the app and not a nested shell.
  await page.goto(sys.base + `/apps/${APP}/`);
  await page.frameLocator('iframe.app-frame').getByRole('heading', { name: 'App not installed' }).waitFor();
  await shot('10-bookmark-after-uninstall');
});
