// Browser check of the shell and the service worker in Debian's Chromium, against
// scripts/mock-agent.mjs (no Rust needed). Run with `npm run test:browser` after `npm run build`.
// Skips (does not fail) when /usr/bin/chromium is missing.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
const web = fileURLToPath(new URL('..', import.meta.url));

let mock;
let base;
let browser;
let page;
let profile;

async function startMock() {
  const child = spawn(process.execPath, ['scripts/mock-agent.mjs', '--port', '0'], {
    cwd: web,
    env: { ...process.env, MOCK_REBUILD_MS: '1200' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('mock agent did not start within 10 s')), 10_000);
    child.stdout.on('data', (d) => {
      const m = /listening (\S+)/.exec(String(d));
      if (m) {
        clearTimeout(t);
        resolve(m[1]);
      }
    });
    child.on('exit', (code) => reject(new Error(`mock agent exited with ${code}`)));
  });
  return { child, url };
}

before(async () => {
  if (!haveChromium) return;
  assert.ok(existsSync(join(web, 'dist/service-worker.js')), 'run `npm run build` first');
  ({ child: mock, url: base } = await startMock());
  const { chromium } = await import('playwright-core');
  profile = mkdtempSync(join(tmpdir(), 'bloud-web-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  browser = context;
  page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(15_000);
});

after(async () => {
  await browser?.close();
  mock?.kill('SIGTERM');
  if (profile) rmSync(profile, { recursive: true, force: true });
});

const demoFrame = () => page.frameLocator('iframe.app-frame');

test('first visit: setup, then home', { skip: !haveChromium && 'no chromium', timeout: 60_000 }, async () => {
  await page.goto(base + '/');
  await page.waitForURL(base + '/setup');
  await page.getByLabel('Username').fill('alice');
  await page.getByLabel('Password', { exact: true }).fill('correct horse');
  await page.getByLabel('Repeat the password').fill('correct horse');
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.waitForURL(base + '/');
  await page.getByText('No apps installed yet.').waitFor();
  await page.getByText('alice').waitFor();
});

test('install from the catalog with a plan, watch progress and the log live', { skip: !haveChromium && 'no chromium', timeout: 60_000 }, async () => {
  await page.getByRole('link', { name: 'Catalog' }).first().click();
  await page.waitForURL(base + '/catalog');
  // Needy requires a backend: the plan dialog proposes Demo and says it will be installed too.
  await page.getByRole('article').filter({ hasText: 'Needy' }).getByRole('button', { name: 'Install' }).click();
  const dialog = page.getByRole('dialog', { name: 'Install Needy' });
  await dialog.getByText('backend (required)').waitFor();
  await dialog.getByText('Will also install:').waitFor();
  assert.equal(await dialog.getByRole('radio', { name: /Demo/ }).isChecked(), true);
  await dialog.getByRole('button', { name: 'Install' }).click();
  await page.waitForURL(base + '/install/needy');
  await page.getByRole('log').getByText('building the system configuration...').waitFor();
  await page.locator('p.phase', { hasText: /^Running$/ }).waitFor();
  await page.getByRole('log').getByText('Rebuild completed successfully').waitFor();
  await page.getByRole('link', { name: 'Open Needy' }).waitFor();
  await page.getByRole('link', { name: 'Home' }).first().click();
  await page.getByRole('link', { name: /Demo, running/i }).waitFor();
});

test('an embedded app: root-level fetches rewritten, URL kept in sync', { skip: !haveChromium && 'no chromium', timeout: 60_000 }, async () => {
  await page.getByRole('link', { name: /Demo, running/i }).click();
  await page.waitForURL(base + '/apps/demo/');
  const frame = demoFrame();
  await frame.getByRole('heading', { name: 'Demo home' }).waitFor();
  // fetch('/data.json') from the app reached the app, not the shell's SPA fallback.
  await frame.locator('#out').filter({ hasText: '"from":"demo"' }).waitFor();

  // A root-level link inside the app stays inside the app, and the shell URL follows.
  await frame.locator('#root-link').click();
  await frame.getByRole('heading', { name: 'Demo page 2' }).waitFor();
  await page.waitForURL(base + '/apps/demo/page2');

  // pushState inside the app moves the shell URL too.
  const f = page.frames().find((x) => x.url().includes('/embed/demo/'));
  assert.ok(f, 'demo frame present');
  await f.evaluate(() => history.pushState(null, '', '/embed/demo/settings?tab=1'));
  await page.waitForURL(base + '/apps/demo/settings?tab=1');
});

test('attribution survives a service worker restart', { skip: !haveChromium && 'no chromium', timeout: 60_000 }, async () => {
  // A page that lives at a root URL (OAuth callback) can only be attributed by the worker's memory.
  await page.goto(base + '/apps/demo/');
  const frameEl = page.locator('iframe.app-frame');
  await demoFrame().locator('#out').filter({ hasText: '"from":"demo"' }).waitFor();
  await frameEl.evaluate((el) => {
    el.src = '/openid-cb?code=x';
  });
  await demoFrame().getByRole('heading', { name: 'Demo OAuth callback' }).waitFor();
  await demoFrame().locator('#out').filter({ hasText: '"from":"demo"' }).waitFor();
  // Leave no other hint: the shell stops telling the worker which app it shows.
  await page.evaluate(async () => {
    const reg = await navigator.serviceWorker.ready;
    await new Promise((resolve) => {
      const ch = new MessageChannel();
      ch.port1.onmessage = resolve;
      reg.active.postMessage({ type: 'SET_ACTIVE_APP', appName: null }, [ch.port2]);
    });
  });
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('ServiceWorker.enable');
  await cdp.send('ServiceWorker.stopAllWorkers');
  const cb = page.frames().find((x) => x.url().includes('/openid-cb'));
  assert.ok(cb, 'callback frame present');
  const text = await cb.evaluate(() => window.fetchAgain('after-restart'));
  assert.match(text, /"from":"demo"/);
  assert.match(text, /after-restart/);
});

test('redirects inside an embedded app stay inside it', { skip: !haveChromium && 'no chromium', timeout: 60_000 }, async () => {
  await page.goto(base + '/apps/demo/old');
  // /embed/demo/old answers 302 Location: /page2 (root-level): the hop is brought back into /embed/demo/.
  await demoFrame().getByRole('heading', { name: 'Demo page 2' }).waitFor();
  await page.waitForURL(base + '/apps/demo/page2');
  const f = page.frames().find((x) => x.url().includes('/embed/demo/'));
  assert.ok(f, 'demo frame present');
  assert.equal(new URL(f.url()).pathname, '/embed/demo/page2');
  // A sub-resource whose redirect escapes to a root path is fetched again inside the app.
  const text = await f.evaluate(() => fetch('/redir-data').then((r) => r.text()));
  assert.match(text, /"from":"demo"/);
  assert.match(text, /via=redirect/);
});

test('an app sending the whole tab to its root path lands in its frame page', { skip: !haveChromium && 'no chromium', timeout: 60_000 }, async () => {
  await page.goto(base + '/apps/demo/');
  await demoFrame().locator('#top-link').click();
  await page.waitForURL(base + '/apps/demo/page2');
  await demoFrame().getByRole('heading', { name: 'Demo page 2' }).waitFor();
});

test('bootstrap intercepts reach the app page', { skip: !haveChromium && 'no chromium', timeout: 60_000 }, async () => {
  await page.goto(base + '/apps/budget/');
  await page.frameLocator('iframe.app-frame').locator('#server').filter({ hasText: `server-url=${base}/embed/budget` }).waitFor();
});

/** Fills and submits the step-up dialog; returns after it closed. */
async function confirmPassword(text, password = 'correct horse') {
  const dlg = page.getByRole('dialog', { name: 'Confirm with your password' });
  await dlg.getByText(text).waitFor();
  await dlg.getByLabel('Your password').fill(password);
  await dlg.getByRole('button', { name: 'Confirm' }).click();
  await dlg.waitFor({ state: 'detached' });
}

async function signInAs(username, password) {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(/\/login/);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(base + '/');
}

test('an admin adds a member after confirming the password, and gives them one app', { skip: !haveChromium && 'no chromium', timeout: 60_000 }, async () => {
  await page.goto(base + '/');
  await page.getByRole('link', { name: 'Users' }).click();
  await page.waitForURL(base + '/users');
  await page.getByRole('article', { name: 'alice' }).getByText('All apps (admin)').waitFor();
  await page.getByLabel('Username').fill('bob');
  await page.getByLabel('Password', { exact: true }).fill('bob-password');
  await page.getByRole('button', { name: 'Add user' }).click();
  // The agent wants the password again: a wrong one is refused inside the dialog.
  const dlg = page.getByRole('dialog', { name: 'Confirm with your password' });
  await dlg.getByText('Add a user.').waitFor();
  await dlg.getByLabel('Your password').fill('not my password');
  await dlg.getByRole('button', { name: 'Confirm' }).click();
  await dlg.getByText(/Wrong password/).waitFor();
  await confirmPassword('Add a user.');
  const bob = page.getByRole('article', { name: 'bob' });
  await bob.getByRole('checkbox', { name: 'Demo' }).check();
  await bob.getByRole('button', { name: 'Save access' }).click();
  await confirmPassword('Change which apps bob may open.');
  // The screen-reader announcer says it too; the visible line is in the page.
  await page.locator('#main').getByText('Saved the apps of bob.').waitFor();
  assert.equal(await page.getByRole('article', { name: 'bob' }).getByRole('checkbox', { name: 'Demo' }).isChecked(), true);
  assert.equal(await page.getByRole('article', { name: 'bob' }).getByRole('checkbox', { name: 'Needy' }).isChecked(), false);
});

test('a member sees only the apps they were given and no admin controls', { skip: !haveChromium && 'no chromium', timeout: 60_000 }, async () => {
  await signInAs('bob', 'bob-password');
  await page.getByRole('link', { name: /Demo, running/i }).waitFor();
  assert.equal(await page.getByRole('link', { name: /Needy/ }).count(), 0);
  assert.equal(await page.getByRole('link', { name: 'Users' }).count(), 0);
  assert.equal(await page.getByRole('link', { name: 'Catalog' }).count(), 0);
  assert.equal(await page.getByRole('link', { name: 'Add apps' }).count(), 0);
  await page.goto(base + '/users');
  await page.waitForURL(base + '/');
  // Hidden is not the protection: the agent refuses a member's admin calls.
  const status = await page.evaluate(() => fetch('/api/users').then((r) => r.status));
  assert.equal(status, 403);
  await signInAs('alice', 'correct horse');
});

test('uninstalling with its data asks for the password; a script in an app frame cannot skip it', { skip: !haveChromium && 'no chromium', timeout: 60_000 }, async () => {
  // A script in the demo app (same origin) uses the shell's window and the ambient session.
  await page.goto(base + '/apps/demo/');
  await demoFrame().locator('#out').filter({ hasText: '"from":"demo"' }).waitFor();
  const f = page.frames().find((x) => x.url().includes('/embed/demo/'));
  assert.ok(f, 'demo frame present');
  const attack = await f.evaluate(() =>
    top
      .fetch('/api/apps/needy/uninstall', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ clearData: true }) })
      .then(async (r) => ({ status: r.status, body: await r.json() })),
  );
  assert.equal(attack.status, 403);
  assert.equal(attack.body.stepUpRequired, true);
  const installed = await page.evaluate(() => fetch('/api/apps/installed').then((r) => r.json()));
  assert.ok(installed.some((a) => a.name === 'needy' && a.status === 'running'), JSON.stringify(installed));

  // The user does it through the shell: the same request, then the password dialog.
  await page.goto(base + '/catalog');
  await page.getByRole('article').filter({ hasText: 'Needy' }).getByRole('button', { name: 'Uninstall' }).click();
  const dialog = page.getByRole('dialog', { name: 'Uninstall Needy' });
  await dialog.getByLabel('Also delete its data (cannot be undone)').check();
  await dialog.getByRole('button', { name: 'Uninstall' }).click();
  await page.waitForURL(base + '/install/needy?op=uninstall');
  await confirmPassword('Uninstall needy and delete its data.');
  await page.getByRole('log').getByText('Rebuild completed successfully').waitFor();
  await page.getByRole('link', { name: 'Back to home' }).waitFor();
});
