// HTTPS on the box, as a person whose device trusts the box-local CA: Chromium opens
// https://bloud.local:<port> on the proxy's TLS entry point (the certificate and tls.yml are the
// agent's own, issued by its CA at start). The CA is trusted by its SPKI hash, never by
// --ignore-certificate-errors: a browser given the hash of another key refuses the page.
// Then: the shell loads over HTTP/2, the service worker registers and controls the page (browsers
// run workers only in a secure context), the session cookie is Secure, and an app installed from
// the shell works inside its frame over HTTPS.
// Needs `cargo build --workspace --bins` and `cd web && npm run build` first.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createFirstUser, noChromium, openBrowser, shot, startInstalls } from './browser.mjs';
import { startSystem } from './system.mjs';

const APP = 'adguard-home';
let sys;
let base;
const browsers = [];
let failed = false;

/** Base64 SHA-256 of a certificate's SubjectPublicKeyInfo: what Chromium's SPKI list takes. */
function spkiHash(pem) {
  const der = new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('base64');
}

async function browserTrusting(hash) {
  const b = await openBrowser(undefined, {
    args: [`--host-resolver-rules=MAP bloud.local 127.0.0.1`, `--ignore-certificate-errors-spki-list=${hash}`],
  });
  browsers.push(b);
  return b;
}

before(async () => {
  if (noChromium) return;
  sys = await startSystem({ https: true, demoStepMs: 50 });
  base = `https://bloud.local:${sys.httpsPort}`;
});

after(async () => {
  if (failed && sys) console.error(sys.logs());
  for (const b of browsers) await b.close();
  await sys?.stop();
});

test('a browser that does not trust the box CA is refused', { skip: noChromium, timeout: 60_000 }, async () => {
  try {
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' });
    const { page } = await browserTrusting(createHash('sha256').update(other).digest('base64'));
    await assert.rejects(page.goto(base + '/'), /ERR_CERT_AUTHORITY_INVALID|ERR_CERT/);
  } catch (e) {
    failed = true;
    throw e;
  }
});

test('with the box CA trusted: shell over h2, service worker, Secure cookie, an app in its frame', { skip: noChromium, timeout: 180_000 }, async () => {
  try {
    const { page, context } = await browserTrusting(spkiHash(readFileSync(sys.caFile, 'utf8')));
    await createFirstUser(page, base, 'ada', 'correct horse battery');

    const nav = await page.evaluate(() => ({
      protocol: location.protocol,
      secure: window.isSecureContext,
      h: performance.getEntriesByType('navigation')[0]?.nextHopProtocol,
    }));
    assert.deepEqual(nav, { protocol: 'https:', secure: true, h: 'h2' });

    // The worker registers and, after a reload, controls the shell.
    await page.evaluate(() => navigator.serviceWorker.ready.then(() => true));
    await page.reload();
    assert.equal(await page.evaluate(() => navigator.serviceWorker.controller?.scriptURL ?? null), `${base}/service-worker.js`);

    const session = (await context.cookies(base)).find((c) => c.name === 'bloud_session');
    assert.ok(session, 'no bloud_session cookie after setup');
    assert.equal(session.secure, true, 'the session cookie over HTTPS must be Secure');

    const status = await page.evaluate(() => fetch('/api/tls/status').then((r) => r.json()));
    assert.equal(status.https, true);

    await startInstalls(page, [APP]);
    await page.goto(base + '/');
    await page.getByRole('link', { name: /^AdGuard Home, running/i }).waitFor({ timeout: 90_000 });
    await page.goto(base + `/apps/${APP}/`);
    const frame = page.frameLocator('iframe.app-frame');
    await frame.getByRole('heading', { name: APP, level: 1 }).waitFor();
    // The app's page came through the TLS entry point: the proxy told it so.
    assert.match(await frame.locator('body').textContent(), /x-forwarded-proto:\s*https/i);
    await shot(page, 'https-app-frame');
  } catch (e) {
    failed = true;
    throw e;
  }
});
