// The home screen arranged by hand and the catalog's search, filter and app detail, in Debian's
// Chromium through the real proxy and agent (demo mode): drag a tile with the mouse, with a
// touch long-press, and move one with the keyboard (Shift + arrow, announced); after a reload
// the order is the one the person made, read back from /api/user/layout. Screenshots (desktop
// and 375 px) go to artifacts/home-*.png.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { DESKTOP, PHONE } from './a11y.mjs';
import { createFirstUser, noChromium, openBrowser, shot, startInstalls } from './browser.mjs';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repo, startSystem } from './system.mjs';

const USER = 'grace';
const PASSWORD = 'correct horse battery';
const APPS = { 'actual-budget': 'Actual Budget', 'adguard-home': 'AdGuard Home', jellyfin: 'Jellyfin' };

let sys;
let browser;
let page;
let failed = false;

before(async () => {
  if (noChromium) return;
  sys = await startSystem();
  browser = await openBrowser(DESKTOP);
  page = browser.page;
});

after(async () => {
  if (failed && sys) console.error(sys.logs());
  await browser?.close();
  await sys?.stop();
});

function step(name, fn) {
  test(name, { skip: noChromium, timeout: 120_000 }, async () => {
    if (failed) throw new Error('not run: an earlier step failed');
    try {
      await fn();
    } catch (e) {
      failed = true;
      await shot(page, `home-failed-${name.replace(/\W+/g, '-')}`).catch(() => {});
      throw e;
    }
  });
}

/** Display names of the home tiles, in the order shown. */
const tileOrder = async () => (await page.locator('ul.tiles > li .tile-name').allTextContents()).map((t) => t.replace(/,$/, ''));
const tile = (name) => page.getByRole('link', { name: `${name}, running` });
const saved = () => page.waitForResponse((r) => r.url().endsWith('/api/user/layout') && r.request().method() === 'PUT' && r.status() === 200);
const storedOrder = () =>
  page.evaluate(async () => {
    const layout = await (await fetch('/api/user/layout')).json();
    return layout.filter((g) => g.type === 'app').sort((a, b) => a.row - b.row || a.col - b.col).map((g) => g.id);
  });

async function centre(locator) {
  const b = await locator.boundingBox();
  return { x: b.x + b.width / 2, y: b.y + b.height / 2 };
}

step('three installed apps show on home, in name order before any arranging', async () => {
  await createFirstUser(page, sys.base, USER, PASSWORD);
  await startInstalls(page, Object.keys(APPS));
  for (const name of Object.values(APPS)) await tile(name).waitFor({ timeout: 90_000 });
  assert.deepEqual(await tileOrder(), ['Actual Budget', 'AdGuard Home', 'Jellyfin']);
  await page.getByText('press Shift with an arrow key').waitFor();
  await shot(page, 'home-01-before');
});

step("tiles show the projects' own icons, and the initial when an icon fails to load", async () => {
  const logo = readFileSync(join(repo, 'apps/jellyfin/logo.png'));
  const served = await page.evaluate(async () => [...new Uint8Array(await (await fetch('/api/apps/jellyfin/icon')).arrayBuffer())]);
  assert.ok(Buffer.from(served).equals(logo), 'the agent serves apps/jellyfin/logo.png');
  const img = tile('Jellyfin').locator('.app-icon img');
  await img.waitFor();
  await page.waitForFunction((el) => el.complete && el.naturalWidth > 0, await img.elementHandle());
  assert.equal(await img.evaluate((el) => el.naturalWidth), 192);
  // A broken icon leaves the app's initial, not a broken image.
  await page.route('**/api/apps/adguard-home/icon', (r) => r.abort());
  await page.reload();
  await tile('AdGuard Home').locator('.app-icon-fallback', { hasText: 'A' }).waitFor();
  assert.equal(await tile('AdGuard Home').locator('img').count(), 0);
  await page.unroute('**/api/apps/adguard-home/icon');
});

step('dragging a tile with the mouse moves it, and the order survives a reload', async () => {
  const from = await centre(tile('Jellyfin'));
  const to = await centre(tile('Actual Budget'));
  const put = saved();
  await page.mouse.move(from.x, from.y);
  await page.mouse.down();
  await page.mouse.move(from.x - 20, from.y, { steps: 4 });
  await page.locator('.tile-ghost').waitFor();
  await page.mouse.move(to.x, to.y, { steps: 10 });
  await shot(page, 'home-02-dragging');
  await page.mouse.up();
  await put;
  // The drop is not a click: the page stayed on home.
  assert.equal(new URL(page.url()).pathname, '/');
  assert.deepEqual(await tileOrder(), ['Jellyfin', 'Actual Budget', 'AdGuard Home']);
  assert.deepEqual(await storedOrder(), ['jellyfin', 'actual-budget', 'adguard-home']);
  await page.reload();
  await tile('Jellyfin').waitFor();
  assert.deepEqual(await tileOrder(), ['Jellyfin', 'Actual Budget', 'AdGuard Home']);
});

step('Escape during a drag puts the tile back and saves nothing', async () => {
  const before = await tileOrder();
  let puts = 0;
  const count = (r) => {
    if (r.url().endsWith('/api/user/layout') && r.method() === 'PUT') puts++;
  };
  page.on('request', count);
  const from = await centre(tile('AdGuard Home'));
  const to = await centre(tile('Jellyfin'));
  await page.mouse.move(from.x, from.y);
  await page.mouse.down();
  await page.mouse.move(to.x, to.y, { steps: 10 });
  await page.locator('.tile-ghost').waitFor();
  assert.notDeepEqual(await tileOrder(), before, 'the tile moves while held');
  await page.keyboard.press('Escape');
  await page.locator('.tile-ghost').waitFor({ state: 'detached' });
  // Released on the tile it started from: cancelling is not opening it.
  await page.mouse.move(from.x, from.y, { steps: 4 });
  await page.mouse.up();
  assert.deepEqual(await tileOrder(), before);
  // Reading the stored layout after the cancelled drop: any save it started would be before it.
  assert.deepEqual(await storedOrder(), ['jellyfin', 'actual-budget', 'adguard-home']);
  page.off('request', count);
  assert.equal(puts, 0);
  assert.equal(new URL(page.url()).pathname, '/');
});

step('with the keyboard: Shift+Arrow moves the focused tile, says where it is, and keeps focus', async () => {
  await tile('Actual Budget').focus();
  const put = saved();
  await page.keyboard.press('Shift+ArrowRight');
  await put;
  assert.deepEqual(await tileOrder(), ['Jellyfin', 'AdGuard Home', 'Actual Budget']);
  await page.getByRole('status').filter({ hasText: 'Actual Budget: position 3 of 3.' }).waitFor();
  assert.equal(await page.evaluate(() => document.activeElement?.querySelector('.tile-name')?.textContent), 'Actual Budget,');
  await page.reload();
  await tile('Jellyfin').waitFor();
  assert.deepEqual(await tileOrder(), ['Jellyfin', 'AdGuard Home', 'Actual Budget']);
  assert.deepEqual(await storedOrder(), ['jellyfin', 'adguard-home', 'actual-budget']);
  await shot(page, 'home-03-after-keyboard');
});

step('at 375 px, a touch long-press picks a tile up and drags it', async () => {
  await page.setViewportSize(PHONE);
  await page.reload();
  await tile('Jellyfin').waitFor();
  await shot(page, 'home-04-375px');
  const from = await centre(tile('Actual Budget'));
  const to = await centre(tile('Jellyfin'));
  const cdp = await browser.context.newCDPSession(page);
  const touch = (type, p) => cdp.send('Input.dispatchTouchEvent', { type, touchPoints: p ? [{ x: p.x, y: p.y }] : [] });
  const put = saved();
  await touch('touchStart', from);
  // The person holds the tile still until it lifts.
  await page.locator('.tile-ghost').waitFor();
  for (let i = 1; i <= 10; i++) await touch('touchMove', { x: from.x + ((to.x - from.x) * i) / 10, y: from.y + ((to.y - from.y) * i) / 10 });
  await touch('touchEnd');
  await put;
  assert.deepEqual(await tileOrder(), ['Actual Budget', 'Jellyfin', 'AdGuard Home']);
  assert.equal(new URL(page.url()).pathname, '/');
  await page.reload();
  await tile('Jellyfin').waitFor();
  assert.deepEqual(await tileOrder(), ['Actual Budget', 'Jellyfin', 'AdGuard Home']);
  await page.setViewportSize(DESKTOP);
});

step('catalog: the search box and the category filter narrow the list', async () => {
  await page.goto(sys.base + '/catalog');
  const cards = page.getByRole('article');
  const names = () => cards.getByRole('heading', { level: 3 }).allInnerTexts();
  await page.getByRole('heading', { name: 'Radarr', exact: true }).waitFor();
  const all = (await names()).length;
  assert.ok(all >= 8, `the whole catalog shows (${all} cards)`);
  await page.getByRole('searchbox', { name: 'Search apps' }).fill('jelly');
  await page.getByRole('status').filter({ hasText: `2 of ${all} apps` }).waitFor();
  assert.deepEqual((await names()).sort(), ['Jellyfin', 'Jellyseerr']);
  await shot(page, 'home-05-catalog-search');
  // Every word must match, in any field: "movie" is only in Radarr's description.
  await page.getByRole('searchbox', { name: 'Search apps' }).fill('movie manager');
  await page.getByRole('heading', { name: 'Radarr', exact: true }).waitFor();
  assert.deepEqual(await names(), ['Radarr']);
  await page.getByRole('searchbox', { name: 'Search apps' }).fill('');
  await page.getByRole('combobox', { name: 'Category' }).selectOption('productivity');
  await page.getByRole('heading', { name: 'Actual Budget', exact: true }).waitFor();
  const productivity = await names();
  assert.ok(productivity.includes('Actual Budget') && !productivity.includes('Jellyfin') && !productivity.includes('Radarr'), productivity.join(', '));
  // The filter is in the URL: a reload keeps it.
  await page.reload();
  await page.getByRole('heading', { name: 'Actual Budget', exact: true }).waitFor();
  assert.deepEqual(await names(), productivity);
  assert.equal(await page.getByRole('combobox', { name: 'Category' }).inputValue(), 'productivity');
});

step('app detail: description, what it connects to, port, data location and sign-in method', async () => {
  await page.goto(sys.base + '/catalog?q=radarr');
  await page.getByRole('link', { name: 'Radarr', exact: true }).click();
  await page.waitForURL(sys.base + '/catalog/radarr');
  await page.getByRole('heading', { name: 'Radarr', level: 1 }).waitFor();
  await page.getByText('Movie collection manager and downloader').waitFor();
  const facts = Object.fromEntries(
    await page.locator('dl.facts dt').evaluateAll((dts) => dts.map((dt) => [dt.textContent, dt.nextElementSibling?.textContent ?? ''])),
  );
  assert.match(facts['Connects to'], /download client \(required\): qBittorrent \(default\)/);
  assert.match(facts.Port, new RegExp(`^${sys.ports.apps.radarr} on this host`));
  assert.equal(facts['Data location'], `${sys.dir}/data/radarr`);
  assert.match(facts['Sign-in (SSO)'], /forward auth/);
  assert.equal(facts.Category, 'media');
  await page.getByRole('button', { name: 'Install' }).waitFor();
  await shot(page, 'home-06-detail');
  await page.setViewportSize(PHONE);
  await shot(page, 'home-07-detail-375px');
  await page.setViewportSize(DESKTOP);
  // A link in "Connects to" leads to that app's page.
  await page.locator('dl.facts').getByRole('link', { name: /qBittorrent/ }).click();
  await page.waitForURL(sys.base + '/catalog/qbittorrent');
  await page.getByRole('heading', { name: 'qBittorrent', level: 1 }).waitFor();
  await page.locator('dl.facts').getByText('Radarr').waitFor();
});
