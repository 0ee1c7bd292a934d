// A real, unmodified OpenID Connect relying party signs Bloud users in through bloud-proxy, in
// Debian's Chromium. The app is Apache httpd with mod_auth_openidc (Debian packages, see
// oidc-rp.mjs); bloud-agent is its provider, the issuer is the proxy's public address. What a
// person sees:
// - signed in to the Bloud shell, opening the app in the shell's frame shows the app's page with
//   their Bloud username, which Apache took from the ID token (the `preferred_username` claim and
//   REMOTE_USER), their Bloud user id as `sub` and their Bloud role as `groups`;
// - a second Bloud user, in a fresh browser, gets their own name, not the first user's;
// - a browser with no Bloud session that opens the app is sent to Bloud's login, and after
//   signing in there lands on the app signed in.
//
// Needs `cargo build --workspace --bins`, `cd web && npm run build` and apache2 +
// libapache2-mod-auth-openidc (scripts/ensure-deps test). Skips, with the reason, only when
// Chromium or Apache is missing.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { APP, missingApache, startRpSystem } from './oidc-rp.mjs';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const skip = (!existsSync(CHROMIUM) && `${CHROMIUM} is missing (scripts/ensure-deps test installs it)`) || missingApache();
const artifacts = fileURLToPath(new URL('./artifacts/', import.meta.url));
const ADMIN = { username: 'alice', password: 'correct horse battery' };
const MEMBER = { username: 'bob', password: 'bob has his own password' };

let sys;
let chromium;
const contexts = [];
const profiles = [];
let failed = false;

before(async () => {
  if (skip) return;
  mkdirSync(artifacts, { recursive: true });
  sys = await startRpSystem();
  ({ chromium } = await import('playwright-core'));
  // The first user (admin) through the setup API; the second (a member who may open the app)
  // through the admin API on the socket, as an admin would add them.
  const first = await fetch(`${sys.base}/api/setup/create-user`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(ADMIN),
  });
  if (!first.ok) throw new Error(`creating the first user: HTTP ${first.status} ${await first.text()}`);
  const second = await sys.api('POST', '/api/users', { ...MEMBER, role: 'member', apps: [APP] });
  if (second.status !== 201 && second.status !== 200) throw new Error(`adding ${MEMBER.username}: HTTP ${second.status} ${second.text}`);
  const users = await sys.api('GET', '/api/users');
  const list = Array.isArray(users.json) ? users.json : users.json?.users;
  for (const u of [ADMIN, MEMBER]) {
    u.id = list?.find((x) => x.username === u.username)?.id;
    if (!u.id) throw new Error(`no id for ${u.username} in GET /api/users: ${users.text}`);
  }
});

after(async () => {
  if (failed && sys) console.error(sys.logs());
  for (const c of contexts) await c.close().catch(() => {});
  await sys?.stop();
  for (const p of profiles) rmSync(p, { recursive: true, force: true });
});

/** A fresh browser profile: no cookies, as a different person's browser. */
async function newBrowser() {
  const profile = mkdtempSync(join(tmpdir(), 'bloud-oidc-rp-chromium-'));
  profiles.push(profile);
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 860 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  contexts.push(context);
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(20_000);
  page.on('pageerror', (e) => console.error(`[page error] ${e.message}`));
  return page;
}

function step(name, fn) {
  test(name, { skip, timeout: 90_000 }, async () => {
    let page;
    try {
      await fn((p) => { page = p; return p; });
    } catch (e) {
      failed = true;
      await page?.screenshot({ path: join(artifacts, `oidc-rp-failed-${name.replace(/\W+/g, '-')}.png`), fullPage: true }).catch(() => {});
      throw e;
    }
  });
}

/** Signs in on the shell's login page the page is on. */
async function signIn(page, user) {
  await page.getByRole('heading', { name: 'Sign in to Bloud' }).waitFor();
  await page.getByLabel('Username').fill(user.username);
  await page.getByLabel('Password').fill(user.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** What the relying party's page (a frame or the page itself) says about the signed-in user. */
async function appIdentity(target) {
  await target.locator('#user').waitFor();
  const text = async (id) => (await target.locator(id).textContent()).trim();
  return { user: await text('#user'), remoteUser: await text('#remote-user'), sub: await text('#sub'), groups: await text('#groups'), iss: await text('#iss') };
}

step('signed in to Bloud, the app in the shell frame shows the Bloud user it got from the ID token', async (track) => {
  const page = track(await newBrowser());
  await page.goto(`${sys.base}/login`);
  await signIn(page, ADMIN);
  await page.waitForURL(`${sys.base}/`);
  await page.goto(`${sys.base}/apps/${APP}/`);
  await page.locator('iframe.app-frame').waitFor();
  const frame = page.frameLocator('iframe.app-frame');
  const seen = await appIdentity(frame);
  await page.screenshot({ path: join(artifacts, 'oidc-rp-admin.png'), fullPage: true });
  assert.deepEqual(seen, { user: ADMIN.username, remoteUser: ADMIN.username, sub: ADMIN.id, groups: 'admin', iss: sys.base });
  // The frame went through the provider: Apache holds its own session now, and the frame's
  // address is back on the app's page, not on the callback.
  const inner = page.frames().find((f) => new URL(f.url()).pathname.startsWith(`/embed/${APP}/`));
  assert.ok(inner, `a frame under /embed/${APP}/ (frames: ${page.frames().map((f) => f.url()).join(', ')})`);
  assert.equal(new URL(inner.url()).pathname, `/embed/${APP}/`);
  const cookies = await page.context().cookies(`${sys.base}/embed/${APP}/`);
  assert.ok(cookies.some((c) => c.name.startsWith('mod_auth_openidc_session')), `Apache's session cookie is set (cookies: ${cookies.map((c) => c.name).join(', ')})`);
});

step('a second Bloud user, in their own browser, gets their own name', async (track) => {
  const page = track(await newBrowser());
  await page.goto(`${sys.base}/login`);
  await signIn(page, MEMBER);
  await page.waitForURL(`${sys.base}/`);
  await page.goto(`${sys.base}/embed/${APP}/`);
  const seen = await appIdentity(page);
  await page.screenshot({ path: join(artifacts, 'oidc-rp-member.png'), fullPage: true });
  assert.deepEqual(seen, { user: MEMBER.username, remoteUser: MEMBER.username, sub: MEMBER.id, groups: 'member', iss: sys.base });
});

step('without a Bloud session the app sends the browser to Bloud\'s login, and back signed in', async (track) => {
  const page = track(await newBrowser());
  await page.goto(`${sys.base}/embed/${APP}/`);
  await page.waitForURL((u) => u.pathname === '/login');
  assert.equal(new URL(page.url()).searchParams.get('next'), `/embed/${APP}/`);
  await signIn(page, MEMBER);
  await page.waitForURL(`${sys.base}/embed/${APP}/`);
  const seen = await appIdentity(page);
  assert.equal(seen.user, MEMBER.username);
  assert.equal(seen.sub, MEMBER.id);
});
