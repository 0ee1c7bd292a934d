#!/usr/bin/env node
// The corpus harness: real third-party web apps behind bloud-proxy with the route bloud-agent
// writes for any app, opened in Debian's Chromium inside the Bloud shell, in two modes:
//   sw     http://localhost:<port>  the shell's service worker controls the app's frame (+ shim)
//   shim   http://bloud.test:<port> no service worker can run there; the proxy's shim alone
//   strip  (comparison only) http://plain.test:<port> (own origin: no cache shared with shim), the route without the embed middleware
// Pass = exercise() resolves (the UI rendered and one real interaction worked), no same-origin
// request outside /embed/<app>/, no failed request (beyond the app's documented expectedFailures).
//
//   node run.mjs [--app a,b] [--mode sw,shim,strip] [--keep]
// Exits 1 when an app fails in `sw` or `shim`. Screenshots: tests/corpus/artifacts/<mode>/<app>.png
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadApps, startApp } from './lib/apps.mjs';
import { judge, record } from './lib/record.mjs';
import { corpusDir, freePorts, stopGroup } from './lib/procs.mjs';
import { startSystem } from './lib/system.mjs';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const MODES = ['sw', 'shim', 'strip'];
const GATING = new Set(['sw', 'shim']);
const USER = 'corpus';
const PASSWORD = 'corpus apps in a row';
const APP_BUDGET_MS = 60_000;

const { values: opts } = parseArgs({
  options: {
    app: { type: 'string' },
    mode: { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});
const modes = opts.mode ? opts.mode.split(',') : MODES;
for (const m of modes) if (!MODES.includes(m)) throw new Error(`unknown mode ${m} (sw, shim, strip)`);
const artifacts = process.env.CORPUS_ARTIFACTS ?? join(corpusDir, 'artifacts');

const t0 = Date.now();
const secs = (ms) => (ms / 1000).toFixed(1);
const say = (msg) => console.log(`[corpus ${secs(Date.now() - t0).padStart(6)} s] ${msg}`);

const apps = await loadApps(opts.app ? opts.app.split(',') : null);
const logDir = join(artifacts, 'logs');
mkdirSync(logDir, { recursive: true });
const running = new Map();
let sys = null;
let context = null;
let profile = null;
const results = [];

async function teardown() {
  await context?.close().catch(() => {});
  if (profile) rmSync(profile, { recursive: true, force: true });
  await Promise.all([...running.values()].map((p) => stopGroup(p.child)));
  for (const p of running.values()) rmSync(p.dir, { recursive: true, force: true });
  await sys?.stop({ keep: opts.keep });
}

// A promise an app module left behind must not end the run before teardown.
process.on('unhandledRejection', (e) => say(`ignored a late rejection: ${String(e?.message ?? e).split('\n')[0]}`));

// Ends everything on Ctrl-C or a CI timeout too.
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    say(`${sig}: stopping`);
    teardown().finally(() => process.exit(130));
  });
}

/** Races a promise against a deadline. */
function within(ms, what, promise) {
  let t;
  // The loser keeps running until its page closes; its late rejection is not this run's failure.
  promise.catch(() => {});
  return Promise.race([
    promise,
    new Promise((_, fail) => { t = setTimeout(() => fail(new Error(`${what}: over ${ms / 1000} s`)), ms); }),
  ]).finally(() => clearTimeout(t));
}

/** Signs the browser in on `base` through the login API, from a page of that origin. */
async function login(base) {
  const p = await context.newPage();
  try {
    await p.goto(`${base}/login`);
    const r = await p.evaluate(async ([username, password]) => {
      const resp = await fetch('/api/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password }) });
      return { status: resp.status, text: await resp.text() };
    }, [USER, PASSWORD]);
    if (r.status !== 200) throw new Error(`login on ${base}: HTTP ${r.status} ${r.text}`);
  } finally {
    await p.close();
  }
}

/** The injected shim tag's size in the app's document at `url` (0 when none is injected). */
async function injectedBytes(frame, url) {
  const html = await frame.evaluate(async (u) => {
    const r = await fetch(u, { redirect: 'manual' });
    return r.status === 200 && (r.headers.get('content-type') ?? '').includes('html') ? r.text() : null;
  }, url).catch(() => null);
  if (html === null) return null;
  const m = /<script\b[^>]*\/__bloud__\/[^>]*>\s*<\/script>/i.exec(html);
  return m ? Buffer.byteLength(m[0]) : 0;
}

async function runOne(app, mode, base) {
  const page = await context.newPage();
  // strip is a comparison only (no pass needed): its apps fail slowly, so they get less time.
  page.setDefaultTimeout(mode === 'strip' ? 10_000 : 30_000);
  const rec = record(context, page);
  const res = { app: app.name, mode, pass: false, problems: [], loadMs: null, addedBytes: null, shot: null };
  try {
    await within(APP_BUDGET_MS, `${app.name} in ${mode}`, (async () => {
      await page.goto(`${base}/apps/${app.name}/`);
      const handle = await page.waitForSelector('iframe.app-frame');
      const frame = await handle.contentFrame();
      if (!frame) throw new Error('the shell shows no app frame');
      await frame.waitForLoadState('load');
      const controlled = await frame.evaluate(() => Boolean(navigator.serviceWorker?.controller));
      if (mode === 'sw' && !controlled) throw new Error('sw mode: the shell\'s service worker does not control the app frame');
      if (mode !== 'sw' && controlled) throw new Error(`${mode} mode: a service worker controls the frame, but none should run here`);
      await app.exercise(frame, { page, base, mode });
      res.loadMs = await frame.evaluate(() => {
        const n = performance.getEntriesByType('navigation')[0];
        return n && n.loadEventEnd > 0 ? Math.round(n.loadEventEnd) : null;
      }).catch(() => null);
      const docUrl = frame.url();
      if (new URL(docUrl).pathname.startsWith(`/embed/${app.name}/`)) res.addedBytes = await injectedBytes(frame, docUrl);
    })());
  } catch (e) {
    res.problems.push(`exercise: ${e.message.split('\n')[0]}`);
  }
  const dir = join(artifacts, mode);
  mkdirSync(dir, { recursive: true });
  res.shot = join(dir, `${app.name}.png`);
  await page.screenshot({ path: res.shot }).catch((e) => res.problems.push(`screenshot: ${e.message}`));
  rec.stop();
  res.problems.push(...judge(rec, app, base));
  res.pass = res.problems.length === 0;
  writeFileSync(join(dir, `${app.name}.requests.json`), JSON.stringify({ requests: rec.requests, sockets: rec.sockets, workers: rec.workers, pageErrors: rec.errors }, null, 1));
  await page.close().catch(() => {});
  return res;
}

let exitCode = 0;
try {
  const timings = {};
  let t = Date.now();
  const ports = await freePorts(apps.length);
  const appPorts = Object.fromEntries(apps.map((a, i) => [a.name, ports[i]]));
  say(`starting ${apps.length} apps: ${apps.map((a) => a.name).join(', ')}`);
  const started = await Promise.allSettled(apps.map(async (a) => {
    const p = await startApp(a, appPorts[a.name], logDir);
    running.set(a.name, p);
  }));
  const live = apps.filter((a, i) => {
    if (started[i].status === 'fulfilled') return true;
    const why = String(started[i].reason?.message ?? started[i].reason);
    say(`${a.name} FAIL (all modes): ${why}`);
    for (const mode of modes) results.push({ app: a.name, mode, pass: false, problems: [why], loadMs: null, addedBytes: null });
    return false;
  });
  timings.startApps = Date.now() - t;

  t = Date.now();
  sys = await startSystem(apps, appPorts);
  const webPort = sys.web;
  const origins = { sw: `http://localhost:${webPort}`, shim: `http://bloud.test:${webPort}`, strip: `http://plain.test:${webPort}` };
  await sys.configure({ publicUrl: origins[modes[0]], strip: modes[0] === 'strip' });
  sys.install(live.map((a) => a.name));
  await sys.waitRoutes((text) => live.every((a) => text.includes(`${a.name}-backend:`)), 'every corpus app has its route');
  const setup = await fetch(`http://127.0.0.1:${webPort}/api/setup/create-user`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: USER, password: PASSWORD }),
  });
  if (!setup.ok) throw new Error(`creating the first user: HTTP ${setup.status} ${await setup.text()}`);
  timings.system = Date.now() - t;

  const { chromium } = await import('playwright-core');
  profile = mkdtempSync(join(tmpdir(), 'bloud-corpus-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 860 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--host-resolver-rules=MAP *.test 127.0.0.1'],
  });

  let current = { publicUrl: origins[modes[0]], strip: modes[0] === 'strip' };
  for (const mode of modes) {
    const tm = Date.now();
    const base = origins[mode];
    const want = { publicUrl: base, strip: mode === 'strip' };
    if (want.publicUrl !== current.publicUrl || want.strip !== current.strip) {
      await sys.configure(want);
      current = want;
    }
    await login(base);
    if (mode === 'sw') {
      // The shell installs its worker on the first visit; apps are opened once it controls pages.
      const p = await context.newPage();
      await p.goto(`${base}/`);
      await p.evaluate(() => navigator.serviceWorker.ready.then(() => true));
      await p.close();
    }
    for (const app of live) {
      const res = await runOne(app, mode, base);
      results.push(res);
      say(`${mode.padEnd(5)} ${app.name.padEnd(14)} ${res.pass ? 'pass' : 'FAIL'}${res.loadMs !== null ? `  load ${res.loadMs} ms` : ''}${res.addedBytes ? `  +${res.addedBytes} B` : ''}  ${res.shot ?? ''}`);
      for (const p of res.problems.slice(0, 12)) say(`      ${p}`);
      if (res.problems.length > 12) say(`      … ${res.problems.length - 12} more (see ${join(artifacts, mode, `${app.name}.requests.json`)})`);
      const proc = running.get(app.name);
      if (proc?.exited) say(`      ${app.name} exited (${proc.exited}); log ${proc.logPath}`);
    }
    timings[mode] = Date.now() - tm;
  }

  // The result table (also what docs/embed.md's corpus table is made from).
  console.log('\napp             ' + modes.map((m) => m.padEnd(6)).join('') + `load ms (${modes.join('/')})`.padEnd(26) + 'shim tag bytes');
  for (const app of apps) {
    const row = modes.map((m) => results.find((r) => r.app === app.name && r.mode === m));
    console.log(`${app.name.padEnd(16)}${row.map((r) => (r?.pass ? 'pass' : 'FAIL').padEnd(6)).join('')}${row.map((r) => r?.loadMs ?? '-').join('/').padEnd(26)}${row.find((r) => r?.addedBytes)?.addedBytes ?? '-'}`);
  }
  console.log(`\ntimings: ${Object.entries(timings).map(([k, v]) => `${k} ${secs(v)} s`).join(', ')}; total ${secs(Date.now() - t0)} s`);
  console.log(`artifacts: ${artifacts}  app logs: ${logDir}`);
  writeFileSync(join(artifacts, 'results.json'), JSON.stringify({ results, timings }, null, 1));
  if (results.some((r) => GATING.has(r.mode) && !r.pass)) exitCode = 1;
} catch (e) {
  console.error(e.stack ?? String(e));
  if (sys) console.error(sys.logs());
  exitCode = 1;
} finally {
  await teardown();
}
process.exit(exitCode);
