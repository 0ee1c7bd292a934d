// Debian's Chromium for the browser tests (through playwright-core), and the steps many tests
// start with. Screenshots go to artifacts/ (gitignored).
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
export const noChromium = !existsSync(CHROMIUM) && `${CHROMIUM} is missing (apt-get install -y chromium; scripts/ensure-deps test installs it)`;
export const artifacts = fileURLToPath(new URL('./artifacts/', import.meta.url));

/** A fresh Chromium profile; returns { context, page, close() }. */
export async function openBrowser(viewport = { width: 1280, height: 860 }) {
  mkdirSync(artifacts, { recursive: true });
  const { chromium } = await import('playwright-core');
  const profile = mkdtempSync(join(tmpdir(), 'bloud-e2e-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(20_000);
  page.on('pageerror', (e) => console.error(`[page error] ${e.message}`));
  return {
    context,
    page,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

export async function shot(page, name) {
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
}

/** The first-visit setup form: creates the admin and lands on the (empty) home. */
export async function createFirstUser(page, base, user, password) {
  await page.goto(base + '/');
  await page.waitForURL(base + '/setup');
  await page.getByLabel('Username').fill(user);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByLabel('Repeat the password').fill(password);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.waitForURL(base + '/');
}

/**
 * Starts installing `apps` through the agent API with this browser's session (the queue batches
 * them into one rebuild), without waiting for the answers: the installs take a while.
 */
export async function startInstalls(page, apps) {
  await page.evaluate((names) => {
    for (const n of names) {
      void fetch(`/api/apps/${n}/install`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    }
  }, apps);
}
