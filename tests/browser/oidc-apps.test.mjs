// One account for every app (issue 14), in Debian's Chromium on a real Bloud system (bloud-proxy,
// bloud-agent in demo mode, the built shell). The install dialog says what will be connected;
// installing Miniflux (catalog: sso.strategy native-oidc) registers its OpenID Connect client and
// hands the secret to the app; the demo app, a real relying party of the agent's provider (code
// flow + PKCE, code exchanged server-side, ID token checked against the JWKS), signs the shell's
// user in without a second password; a forged callback is refused; uninstalling removes the
// client and the secret.
//
// Needs `cargo build --workspace --bins` and `cd web && npm run build` first (scripts/test does
// both). Skips, with the reason, only when /usr/bin/chromium is missing.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { artifacts } from './browser.mjs';
import { walkThrough } from './walk.mjs';

const USER = 'alice';
const PASSWORD = 'correct horse battery';
const OIDC_LINE = 'Sign in with your Bloud account (OpenID Connect)';
const LOGIN_LINE = "Protected by Bloud's login";

let sys;
let context;
let page;

const secretFile = () => join(sys.dir, 'data', 'secrets', 'values', 'oidc-miniflux-client-secret');
const shot = (name) => page.screenshot({ path: join(artifacts, `oidc-${name}.png`), fullPage: true });
const clients = () => page.evaluate(() => fetch('/api/oidc/clients').then((r) => r.json()));

const { step } = walkThrough({
  prefix: 'oidc-',
  pageTimeout: 20_000,
  stepTimeout: 120_000,
  ready: (s) => ({ sys, context, page } = s),
});

async function openCatalogCard(name) {
  await page.getByRole('link', { name: 'Catalog' }).first().click();
  await page.waitForURL(sys.base + '/catalog');
  const card = page.getByRole('article').filter({ has: page.getByRole('heading', { name, exact: true }) });
  await card.waitFor();
  return card;
}

step('the first user is created', async () => {
  await page.goto(sys.base + '/');
  await page.waitForURL(sys.base + '/setup');
  await page.getByLabel('Username').fill(USER);
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByLabel('Repeat the password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.waitForURL(sys.base + '/');
  await page.getByText('No apps installed yet.').waitFor();
});

step('the install dialog of a forward-auth app promises the login check and no OpenID Connect', async () => {
  const card = await openCatalogCard('AdGuard Home');
  await card.getByRole('button', { name: 'Install' }).click();
  const dialog = page.getByRole('dialog', { name: 'Install AdGuard Home' });
  await dialog.getByText('Will connect automatically:').waitFor();
  const items = await dialog.getByRole('listitem').allInnerTexts();
  assert.deepEqual(items, [LOGIN_LINE]);
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await dialog.waitFor({ state: 'hidden' });
});

step('the install dialog of Miniflux says it signs in with the Bloud account; install it', async () => {
  const card = await openCatalogCard('Miniflux');
  await card.getByRole('button', { name: 'Install' }).click();
  const dialog = page.getByRole('dialog', { name: 'Install Miniflux' });
  await dialog.getByText('Will connect automatically:').waitFor();
  await dialog.getByText(OIDC_LINE).waitFor();
  await dialog.getByText(LOGIN_LINE).waitFor();
  await shot('01-install-dialog');
  await dialog.getByRole('button', { name: 'Install' }).click();
  await page.waitForURL(sys.base + '/install/miniflux');
  await page.getByRole('log').getByText('Rebuild completed successfully').waitFor({ timeout: 90_000 });
  await page.locator('p.phase', { hasText: /^Running$/ }).waitFor({ timeout: 60_000 });
});

step('the agent registered the client and wrote its secret for the app only', async () => {
  const list = await clients();
  const mine = list.filter((c) => c.client_id === 'miniflux');
  assert.equal(mine.length, 1, JSON.stringify(list));
  assert.deepEqual(mine[0].redirect_uris, [`${sys.base}/embed/miniflux/oauth2/oidc/callback`]);
  assert.equal(mine[0].app, 'miniflux');
  assert.ok(!JSON.stringify(list).includes('secret'), 'no secret (nor its digest) in the API');
  const st = statSync(secretFile());
  assert.equal(st.mode & 0o077, 0, `secret file mode ${(st.mode & 0o777).toString(8)}`);
  const secret = readFileSync(secretFile(), 'utf8').trim();
  assert.ok(secret.length >= 32);
  // Never logged: not by the agent, the proxy, the rebuilds or the demo app.
  const logsDir = join(sys.dir, 'log');
  const demoDir = join(sys.dir, 'data', 'demo');
  const rebuildDir = join(sys.dir, 'data', 'rebuilds');
  for (const d of [logsDir, demoDir, rebuildDir]) {
    for (const f of existsSync(d) ? readdirSync(d) : []) {
      const p = join(d, f);
      if (!statSync(p).isFile() || f.endsWith('.oidc')) continue;
      assert.ok(!readFileSync(p, 'utf8').includes(secret), `${p} contains the client secret`);
    }
  }
});

step('open Miniflux: one click signs the shell user in through the agent, no second password', async () => {
  await page.getByRole('link', { name: 'Open Miniflux' }).click();
  await page.waitForURL(sys.base + '/apps/miniflux/');
  const frame = page.frameLocator('iframe.app-frame');
  await frame.getByRole('heading', { name: 'miniflux', level: 1 }).waitFor();
  await shot('02-signed-out');
  await frame.getByRole('link', { name: 'Sign in with Bloud' }).click();
  await frame.getByText(`Signed in as ${USER}`).waitFor();
  await shot('03-signed-in');
  // The round trip stayed inside the app's frame and ended on the app's page.
  const inner = page.frames().find((f) => new URL(f.url()).pathname.startsWith('/embed/miniflux/'));
  assert.ok(inner, `frames: ${page.frames().map((f) => f.url()).join(', ')}`);
  assert.equal(new URL(inner.url()).pathname, '/embed/miniflux/');
  assert.equal(await page.getByLabel('Password').count(), 0, 'no password asked');
});

step('a forged callback (a code and state this browser never asked for) is refused', async () => {
  const r = await page.evaluate(() =>
    fetch('/embed/miniflux/oauth2/oidc/callback?code=forged&state=forged').then(async (x) => ({ status: x.status, body: await x.text() })),
  );
  assert.equal(r.status, 502);
  assert.match(r.body, /Sign-in failed/);
  assert.match(r.body, /state does not match/);
});

step('uninstalling Miniflux removes its client and its secret', async () => {
  const card = await openCatalogCard('Miniflux');
  await card.getByRole('button', { name: 'Uninstall' }).click();
  const dialog = page.getByRole('dialog', { name: 'Uninstall Miniflux' });
  await dialog.getByRole('button', { name: 'Uninstall' }).click();
  await page.waitForURL(sys.base + '/install/miniflux?op=uninstall');
  await page.locator('p.phase', { hasText: /^Removed$/ }).waitFor({ timeout: 90_000 });
  const list = await clients();
  assert.ok(!list.some((c) => c.client_id === 'miniflux'), JSON.stringify(list));
  assert.ok(!existsSync(secretFile()), 'secret file removed');
});
