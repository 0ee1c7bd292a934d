// System health and rollback as a person uses them, in Debian's Chromium against a real Bloud
// (bloud-proxy in front, bloud-agent in demo mode, web/dist): the home widgets and the system
// page show live numbers (per-app memory of the running demo apps included); install app A, then
// app B; on the history page roll back to the generation with only A (confirm, then password):
// B's tile is gone, /embed/B/ no longer reaches it, A remains and still serves. Screenshots at
// 1280 px and 375 px go to artifacts/ (gitignored).
//
// Needs `cargo build --workspace --bins` and `cd web && npm run build` first.
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { artifacts } from './browser.mjs';
import { walkThrough } from './walk.mjs';

const A = { name: 'adguard-home', display: 'AdGuard Home' };
const B = { name: 'qbittorrent', display: 'qBittorrent' };
const USER = 'alice';
const PASSWORD = 'correct horse battery';

let sys;
let context;
let page;

/** Desktop and phone-sized screenshots of the current page. */
async function shots(name) {
  await page.screenshot({ path: join(artifacts, `history-${name}-1280.png`), fullPage: true });
  await page.setViewportSize({ width: 375, height: 740 });
  await page.screenshot({ path: join(artifacts, `history-${name}-375.png`), fullPage: true });
  // Nothing wider than the phone's screen.
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `${name}: the page is ${overflow}px wider than a 375px screen`);
  await page.setViewportSize({ width: 1280, height: 860 });
}

const { step } = walkThrough({
  prefix: 'history-',
  pageTimeout: 30_000,
  stepTimeout: 120_000,
  ready: (s) => ({ sys, context, page } = s),
});

/** An install the way the shell sends it (the catalog flow itself is the walk-through's). */
async function install(app) {
  const r = await page.evaluate(async (name) => {
    const resp = await fetch(`/api/apps/${name}/install`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    return { status: resp.status, body: await resp.text() };
  }, app);
  assert.equal(r.status, 200, r.body);
}

step('set up the first user; the home page shows live system widgets with numbers', async () => {
  await page.goto(sys.base + '/');
  await page.waitForURL(sys.base + '/setup');
  await page.getByLabel('Username').fill(USER);
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByLabel('Repeat the password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.waitForURL(sys.base + '/');
  const widgets = page.getByRole('region', { name: 'System' });
  for (const key of ['cpu', 'memory', 'disk']) {
    const value = widgets.locator(`[data-widget="${key}"] .widget-value`);
    await value.waitFor();
    assert.match(await value.textContent(), /^\d{1,3}%/);
    // The meter carries the same number for assistive technology.
    const meter = await widgets.locator(`[data-widget="${key}"] meter`).getAttribute('value');
    assert.ok(Number(meter) >= 0 && Number(meter) <= 100, `${key} meter ${meter}`);
  }
  await shots('home-widgets');
});

step('install A, then B: both tiles; the system page shows each app’s memory and storage', async () => {
  await install(A.name);
  await install(B.name);
  await page.goto(sys.base + '/');
  for (const app of [A, B]) await page.getByRole('link', { name: new RegExp(`^${app.display},`) }).waitFor();
  await page.getByRole('link', { name: 'System', exact: true }).first().click();
  await page.waitForURL(sys.base + '/system');
  await page.getByRole('heading', { name: 'System', level: 1 }).waitFor();
  const table = page.getByRole('table', { name: 'Memory and storage per app' });
  for (const app of [A, B]) {
    const row = table.getByRole('row', { name: new RegExp(app.display) });
    await row.waitFor();
    // A running demo app has a resident set of at least some hundreds of KB.
    assert.match(await row.getByRole('cell').first().textContent(), /^\d+(\.\d)? (KB|MB|GB)$/);
  }
  await page.getByText(/used of .* on the disk holding/).waitFor();
  await shots('system');
});

step('history lists the generations with their apps; rolling back to A-only removes B', async () => {
  await page.getByRole('link', { name: 'History and rollback' }).click();
  await page.waitForURL(sys.base + '/system/history');
  const g2 = page.locator('[data-generation="2"]');
  const g1 = page.locator('[data-generation="1"]');
  await g2.getByText('Running now').waitFor();
  assert.match(await g2.locator('.generation-apps').textContent(), new RegExp(`${A.display}.*${B.display}|${B.display}.*${A.display}`));
  assert.equal((await g1.locator('.generation-apps').textContent()).trim(), `Apps: ${A.display}`);
  await shots('history-before');

  await page.getByRole('button', { name: 'Roll back to generation 1' }).click();
  const confirm = page.getByRole('dialog', { name: 'Roll back to generation 1?' });
  await confirm.getByText(`Removed: ${B.display}`, { exact: false }).waitFor();
  await shots('history-confirm');
  await confirm.getByRole('button', { name: 'Roll back to generation 1' }).click();
  const stepUp = page.getByRole('dialog', { name: 'Confirm with your password' });
  await stepUp.getByText('Roll back the system to generation 1').waitFor();
  await stepUp.getByLabel('Your password').fill(PASSWORD);
  await stepUp.getByRole('button', { name: 'Confirm' }).click();
  // Progress: the live log of this rollback, then the result.
  await page.getByRole('log', { name: 'Rollback log' }).getByText('stopping podman-qbittorrent.service', { exact: false }).waitFor();
  await page.getByRole('main').getByRole('status').filter({ hasText: 'Rolled back to generation 1' }).waitFor();
  await g1.getByText('Running now').waitFor();
  await shots('history-after');
});

step('after the rollback: B’s tile and route are gone, A remains and serves', async () => {
  await page.goto(sys.base + '/');
  await page.getByRole('link', { name: new RegExp(`^${A.display},`) }).waitFor();
  assert.equal(await page.getByRole('link', { name: new RegExp(`^${B.display},`) }).count(), 0);
  const a = await page.request.get(`${sys.base}/embed/${A.name}/`, { maxRedirects: 0 });
  assert.equal(a.status(), 200);
  assert.match(await a.text(), new RegExp(`<h1>${A.name}</h1>`));
  const b = await page.request.get(`${sys.base}/embed/${B.name}/`, { maxRedirects: 0 });
  assert.notEqual(b.status(), 200, 'B is no longer routed');
  assert.doesNotMatch(await b.text(), new RegExp(`<h1>${B.name}</h1>`));
  // And nothing listens on B's port any more.
  const port = sys.ports.apps[B.name];
  const reach = await fetch(`http://127.0.0.1:${port}/`).then(() => true, () => false);
  assert.equal(reach, false, `B's demo app still answers on ${port}`);
});
