// bloud-proxy's server-side rewriting of an embedded app, in Debian's Chromium, with no service
// worker anywhere: a host page (served through the proxy at `/`) embeds an AdGuard-style app in
// an iframe at /embed/adguard/. The app knows nothing about the prefix: it redirects `/` to
// `/install.html`, whose HTML, CSS and JS use root-absolute `/static/…` URLs, posts a form to
// `/control/install` (302 to `/login.html`) and links to `/dashboard.html`. Only the proxy's
// `embed` middleware (route written in bloud-agent's shape) keeps all of that under
// /embed/adguard/. Proxy-only: no bloud-agent, no shell. Screenshots go to artifacts/.
//
// Needs `cargo build -p bloud-proxy --bins` first. Skips, with the reason, only when
// /usr/bin/chromium is missing.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { adguardHandler, APP_CSS_BACKGROUND, hostHandler, listen, startProxy } from './embed-harness.mjs';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const noChromium = !existsSync(CHROMIUM) && `${CHROMIUM} is missing (apt-get install -y chromium; scripts/ensure-deps test installs it)`;
const artifacts = fileURLToPath(new URL('./artifacts/', import.meta.url));
const APP = 'adguard';
const PREFIX = `/embed/${APP}`;
// The whole file: setup, every step and the cleanup stay within this.
const WHOLE_FILE_MS = 60_000;

let host;
let app;
let proxy;
let context;
let page;
let profile;
let failed = false;
const appSeen = []; // requests the app server got, as it got them (prefix stripped)
const browserRequests = []; // every request Chromium made: { method, url, frame, type, status, location }
const topNavigations = []; // URLs the top-level frame navigated to

// A hard stop for the file: if anything hangs, end what this file started and fail loudly.
const watchdog = setTimeout(() => {
  console.error(`embed.test.mjs: still running after ${WHOLE_FILE_MS} ms; stopping`);
  if (proxy) console.error(proxy.logs());
  try { proxy?.child.kill('SIGKILL'); } catch { /* gone */ }
  process.exit(1);
}, WHOLE_FILE_MS);
watchdog.unref();

const pathOf = (url) => new URL(url).pathname;

async function shot(name) {
  await page.screenshot({ path: join(artifacts, `embed-${name}.png`), fullPage: true });
}

/** The app's iframe (Playwright keeps one Frame object across the iframe's navigations). */
function appFrame() {
  const f = page.frames().find((fr) => fr !== page.mainFrame());
  assert.ok(f, `an iframe (frames: ${page.frames().map((fr) => fr.url()).join(', ')})`);
  return f;
}

async function frameLandsOn(path) {
  const frame = appFrame();
  await frame.waitForURL(`${proxy.base}${path}`, { timeout: 10_000 });
  await frame.waitForLoadState('load');
  assert.equal(pathOf(frame.url()), path);
  return frame;
}

before(async () => {
  if (noChromium) return;
  mkdirSync(artifacts, { recursive: true });
  host = await listen(hostHandler(APP));
  app = await listen(adguardHandler(appSeen));
  proxy = await startProxy({ app: APP, appPort: app.port, hostPort: host.port });
  const { chromium } = await import('playwright-core');
  profile = mkdtempSync(join(tmpdir(), 'bloud-embed-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1024, height: 700 },
    timeout: 20_000,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(10_000);
  page.on('pageerror', (e) => console.error(`[page error] ${e.message}`));
  // context-level: also sees requests of workers, if any were ever started.
  context.on('request', (req) => {
    browserRequests.push({
      method: req.method(),
      url: req.url(),
      type: req.resourceType(),
      frame: (() => { try { return req.frame().url(); } catch { return null; } })(),
      status: null,
      location: null,
      failure: null,
    });
  });
  context.on('response', (res) => {
    const rec = browserRequests.findLast((r) => r.url === res.url() && r.method === res.request().method() && r.status === null);
    if (rec) {
      rec.status = res.status();
      rec.location = res.headers().location ?? null;
    }
  });
  context.on('requestfailed', (req) => {
    const rec = browserRequests.findLast((r) => r.url === req.url() && r.status === null);
    if (rec) rec.failure = req.failure()?.errorText ?? 'failed';
  });
  page.on('framenavigated', (f) => { if (f === page.mainFrame()) topNavigations.push(f.url()); });
}, { timeout: 40_000 });

after(async () => {
  clearTimeout(watchdog);
  if (failed && proxy) {
    console.error(proxy.logs());
    console.error(`----- browser requests -----\n${browserRequests.map((r) => `${r.method} ${r.url} -> ${r.status ?? r.failure}${r.location ? ` (Location ${r.location})` : ''}`).join('\n')}`);
    console.error(`----- app server saw -----\n${appSeen.map((r) => `${r.method} ${r.url}`).join('\n')}`);
  }
  await context?.close().catch((e) => console.error(`closing Chromium: ${e.message}`));
  await proxy?.stop();
  await app?.close();
  await host?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
}, { timeout: 15_000 });

/** One step of the session; on failure keeps a screenshot and has after() print the logs. */
function step(name, fn) {
  test(name, { skip: noChromium, timeout: 20_000 }, async () => {
    if (failed) throw new Error('not run: an earlier step failed (see its error and screenshot)');
    try {
      await fn();
    } catch (e) {
      failed = true;
      await page?.screenshot({ path: join(artifacts, `embed-failed-${name.replace(/\W+/g, '-')}.png`), fullPage: true }).catch(() => {});
      throw e;
    }
  });
}

step('the iframe follows the app\'s redirect to /embed/adguard/install.html', async () => {
  await page.goto(`${proxy.base}/`);
  await page.locator('#host-header').waitFor();
  const frame = await frameLandsOn(`${PREFIX}/install.html`);
  await frame.getByRole('heading', { name: 'AdGuard Home setup' }).waitFor();

  // The redirect itself: the browser asked for /embed/adguard/, the app answered `/install.html`,
  // the proxy turned it into the prefixed path.
  const first = browserRequests.find((r) => pathOf(r.url) === `${PREFIX}/`);
  assert.ok(first, 'the browser requested /embed/adguard/');
  assert.equal(first.status, 302);
  assert.equal(first.location, `${PREFIX}/install.html`);
  // The app saw the stripped path, with the prefix announced.
  assert.deepEqual(appSeen.slice(0, 2).map((r) => `${r.method} ${r.url}`), ['GET /', 'GET /install.html']);
  assert.equal(appSeen[0].prefix, PREFIX);
  assert.equal(pathOf(page.url()), '/');
});

step('assets load from /embed/adguard/static/: CSS applied, JS ran, images decoded', async () => {
  const frame = appFrame();
  await frame.locator('#js-marker').waitFor();
  assert.equal(await frame.locator('#js-marker').textContent(), 'app.js ran');
  assert.equal(await frame.evaluate(() => document.body.dataset.appJs), 'ran');
  const style = await frame.evaluate(() => {
    const s = getComputedStyle(document.body);
    return { bg: s.backgroundColor, image: s.backgroundImage, color: s.color };
  });
  assert.equal(style.bg, APP_CSS_BACKGROUND, 'app.css applied');
  assert.equal(style.color, 'rgb(250, 250, 250)', 'app.css applied');
  assert.equal(style.image, `url("${proxy.base}${PREFIX}/static/bg.png")`, 'url(/static/bg.png) in the CSS was prefixed');
  // The logo decoded (a 404 or wrong body would leave naturalWidth 0).
  await frame.waitForFunction(() => document.getElementById('logo').complete);
  assert.equal(await frame.evaluate(() => document.getElementById('logo').naturalWidth), 1);
  // bg.png is fetched once the body paints; give it a moment to show in the request log.
  const deadline = Date.now() + 5000;
  while (!browserRequests.some((r) => pathOf(r.url) === `${PREFIX}/static/bg.png` && r.status !== null) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
  }

  const assets = browserRequests.filter((r) => pathOf(r.url).includes('/static/'));
  const wanted = ['app.css', 'app.js', 'logo.png', 'bg.png'].map((f) => `${PREFIX}/static/${f}`);
  for (const path of wanted) {
    const hits = assets.filter((r) => pathOf(r.url) === path);
    assert.ok(hits.length > 0, `the browser requested ${path} (asset requests: ${assets.map((r) => r.url).join(', ')})`);
    for (const h of hits) assert.equal(h.status, 200, `${path} answered 200 (got ${h.status ?? h.failure})`);
  }
  const outside = assets.filter((r) => !pathOf(r.url).startsWith(`${PREFIX}/static/`));
  assert.deepEqual(outside.map((r) => r.url), [], 'no asset request outside /embed/adguard/static/');
  await shot('01-install');
});

step('no service worker: none registered, no sw.js requested', async () => {
  const top = await page.evaluate(() => navigator.serviceWorker.getRegistrations().then((r) => r.length));
  const inner = await appFrame().evaluate(() => navigator.serviceWorker.getRegistrations().then((r) => r.length));
  assert.equal(top, 0, 'no service worker registered for the top page');
  assert.equal(inner, 0, 'no service worker registered for the app');
  assert.equal(context.serviceWorkers().length, 0, 'Chromium runs no service worker');
  const swRequests = browserRequests.filter((r) => /(^|\/)(sw|service-worker)\.js$/.test(pathOf(r.url)));
  assert.deepEqual(swRequests.map((r) => r.url), [], 'the browser requested no service worker script');
});

step('a link click stays under /embed/adguard/ and back again', async () => {
  const frame = appFrame();
  await frame.getByRole('link', { name: 'Open the dashboard' }).click();
  await frameLandsOn(`${PREFIX}/dashboard.html`);
  await frame.getByText('Queries blocked today: 42.').waitFor();
  await shot('02-dashboard');
  await frame.getByRole('link', { name: 'Back to setup' }).click();
  await frameLandsOn(`${PREFIX}/install.html`);
  await frame.locator('#js-marker').waitFor();
  assert.equal(pathOf(page.url()), '/');
});

step('the form post goes to /embed/adguard/control/install and its redirect to /embed/adguard/login.html', async () => {
  const frame = appFrame();
  await frame.getByLabel('Admin user').fill('alice');
  await frame.getByRole('button', { name: 'Install' }).click();
  await frameLandsOn(`${PREFIX}/login.html`);
  await frame.getByText('Sign in to AdGuard Home.').waitFor();
  const post = browserRequests.find((r) => r.method === 'POST');
  assert.ok(post, 'the browser posted the form');
  assert.equal(pathOf(post.url), `${PREFIX}/control/install`);
  assert.equal(post.status, 302);
  assert.equal(post.location, `${PREFIX}/login.html`);
  const got = appSeen.find((r) => r.method === 'POST');
  assert.equal(got?.url, '/control/install');
  assert.equal(got?.body, 'username=alice');
  // The login page's stylesheet came from inside the app too.
  assert.equal(await frame.evaluate(() => getComputedStyle(document.body).backgroundColor), APP_CSS_BACKGROUND);
  await shot('03-login');
});

step('the top page never moved, and every app request stayed under /embed/adguard/', async () => {
  assert.deepEqual(topNavigations, [`${proxy.base}/`], 'the top-level page navigated only once, to /');
  assert.equal(page.url(), `${proxy.base}/`);
  // Outside the prefix the browser asked only for the host page (and perhaps its favicon).
  const outside = browserRequests.filter((r) => !pathOf(r.url).startsWith(`${PREFIX}/`));
  assert.deepEqual(
    outside.map((r) => pathOf(r.url)).filter((p) => p !== '/favicon.ico'),
    ['/'],
    'requests outside /embed/adguard/',
  );
  const failedReqs = browserRequests.filter((r) => pathOf(r.url).startsWith(`${PREFIX}/`) && r.status !== 200 && r.status !== 302);
  assert.deepEqual(failedReqs.map((r) => `${r.method} ${r.url} -> ${r.status ?? r.failure}`), [], 'every app request answered 200 or 302');
  assert.deepEqual(appSeen.filter((r) => r.url.startsWith('/embed/')).map((r) => r.url), [], 'the app never saw an unstripped path');
  // The proxy's own record agrees: no service worker script was asked for.
  const accessLog = join(proxy.dir, 'access.log');
  const deadline = Date.now() + 3000;
  let lines = [];
  while (Date.now() < deadline) {
    lines = existsSync(accessLog) ? readFileSync(accessLog, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
    if (lines.some((l) => l.RequestMethod === 'POST')) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(lines.some((l) => l.RequestPath === `${PREFIX}/control/install`), 'the access log has the form post');
  assert.deepEqual(lines.filter((l) => /(sw|service-worker)\.js/.test(l.RequestPath)).map((l) => l.RequestPath), []);
  await shot('04-final');
});
