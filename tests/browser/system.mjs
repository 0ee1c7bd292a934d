// Starts a whole Bloud system for the browser walk-through, with the same recipe as the Rust
// harness (tests/support/): bloud-proxy in front on a free loopback port, bloud-agent behind it
// in demo `command` rebuild mode serving web/dist, and a copy of the catalog whose app ports are
// free ports, so parallel test runs never collide. stop() ends everything it started, including
// the demo apps the agent's rebuild started (they run in their own process group).
import { spawn } from 'node:child_process';
import {
  copyFileSync, createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync,
  rmSync, statSync, writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repo = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const STARTUP_MS = 30_000;
const ATTEMPTS = 4;

export function binaries() {
  const target = process.env.CARGO_TARGET_DIR ? resolve(repo, process.env.CARGO_TARGET_DIR) : join(repo, 'target');
  const bins = { proxy: join(target, 'debug', 'bloud-proxy'), agent: join(target, 'debug', 'bloud-agent') };
  const missing = Object.values(bins).filter((b) => !existsSync(b));
  return { bins, missing };
}

async function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

async function freePorts(n) {
  const set = new Set();
  while (set.size < n) set.add(await freePort());
  return [...set];
}

function topLevelPort(text) {
  const m = /^port:\s*(\d+)/m.exec(text);
  return m ? Number(m[1]) : null;
}

function catalogAppsWithPort() {
  const apps = join(repo, 'apps');
  return readdirSync(apps)
    .filter((d) => existsSync(join(apps, d, 'metadata.yaml')))
    .filter((d) => topLevelPort(readFileSync(join(apps, d, 'metadata.yaml'), 'utf8')) !== null)
    .sort();
}

function writeLayout(dir, ports, bins) {
  const routes = join(dir, 'routes');
  const data = join(dir, 'data');
  const log = join(dir, 'log');
  const appsDir = join(dir, 'apps');
  for (const d of [routes, data, log]) mkdirSync(d, { recursive: true });
  rmSync(appsDir, { recursive: true, force: true });
  for (const app of readdirSync(join(repo, 'apps'))) {
    const from = join(repo, 'apps', app);
    if (!existsSync(join(from, 'metadata.yaml'))) continue;
    mkdirSync(join(appsDir, app), { recursive: true });
    for (const f of readdirSync(from)) {
      if (!statSync(join(from, f)).isFile()) continue;
      if (f === 'metadata.yaml') {
        let text = readFileSync(join(from, f), 'utf8');
        const old = topLevelPort(text);
        const port = ports.apps[app];
        if (old !== null && port) {
          text = text.replace(/^port:.*$/m, `port: ${port}`).replaceAll(`127.0.0.1:${old}`, `127.0.0.1:${port}`);
        }
        writeFileSync(join(appsDir, app, f), text);
      } else {
        copyFileSync(join(from, f), join(appsDir, app, f));
      }
    }
  }
  const base = readFileSync(join(repo, 'config/routes/base.yml'), 'utf8');
  if (!base.includes('http://127.0.0.1:3000')) {
    throw new Error('config/routes/base.yml no longer points host-agent at http://127.0.0.1:3000; update tests/browser/system.mjs');
  }
  writeFileSync(join(routes, 'base.yml'), base.replaceAll('http://127.0.0.1:3000', `http://127.0.0.1:${ports.agent}`));
  const pidFile = join(dir, 'bloud-proxy.pid');
  writeFileSync(join(dir, 'proxy.yml'), [
    'entryPoints:',
    `  web: { address: "127.0.0.1:${ports.web}", forwardedHeaders: { trustedIPs: [] } }`,
    `  admin: { address: "127.0.0.1:${ports.admin}" }`,
    `providers:\n  file: { directory: "${routes}", watch: false }`,
    'ping: { entryPoint: web }',
    'metrics: { prometheus: { entryPoint: admin } }',
    'api: { entryPoint: admin }',
    `accessLog: { filePath: "${join(log, 'access.log')}", format: json }`,
    'log: { level: info }',
    `pidFile: "${pidFile}"`,
    'lifeCycle: { graceTimeOut: 2s }',
    '',
  ].join('\n'));
  writeFileSync(join(dir, 'agent.yaml'), [
    `listen: 127.0.0.1:${ports.agent}`,
    `appsDir: "${appsDir}"`,
    `dataDir: "${data}"`,
    `routesDir: "${routes}"`,
    `proxyPidFile: "${pidFile}"`,
    `webDir: "${join(repo, 'web', 'dist')}"`,
    `publicUrl: "http://127.0.0.1:${ports.web}"`,
    'rebuild:',
    '  mode: command',
    `  command: ["${bins.agent}", demo-rebuild]`,
    'queue:',
    '  batchWindow: 200ms',
    '',
  ].join('\n'));
  return { routes, data, log, pidFile };
}

function cleanEnv(extra) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('BLOUD_')) env[k] = v;
  return { ...env, ...extra };
}

function launch(name, bin, args, dir, logDir, env) {
  const out = join(logDir, `${name}.out.log`);
  const err = join(logDir, `${name}.err.log`);
  const child = spawn(bin, args, { cwd: dir, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(createWriteStream(out));
  child.stderr.pipe(createWriteStream(err));
  const proc = { name, child, out, err, exited: null };
  child.on('exit', (code, signal) => { proc.exited = signal ?? `exit ${code}`; });
  return proc;
}

const readLog = (p) => (existsSync(p) ? readFileSync(p, 'utf8').slice(-20_000) : '');
const describe = (p) => `----- ${p.name} stdout -----\n${readLog(p.out)}\n----- ${p.name} stderr -----\n${readLog(p.err)}`;

async function waitReady(proc, url, pidFile) {
  const started = Date.now();
  let last = 'no answer yet';
  for (;;) {
    if (proc.exited) throw new Error(`${proc.name} exited during startup (${proc.exited})`);
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (r.status === 200 && (!pidFile || existsSync(pidFile))) return;
      last = `HTTP ${r.status}`;
    } catch (e) {
      last = String(e);
    }
    if (Date.now() - started > STARTUP_MS) throw new Error(`${proc.name} did not answer 200 on ${url} within ${STARTUP_MS} ms (last: ${last})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function stopProc(proc, graceMs = 5000) {
  if (!proc || proc.exited) return;
  const done = new Promise((r) => proc.child.once('exit', r));
  proc.child.kill('SIGTERM');
  const t = setTimeout(() => proc.child.kill('SIGKILL'), graceMs);
  await done;
  clearTimeout(t);
}

/** Pids of demo apps on this system's ports (never another process that reused a pid). */
function demoAppPids(data, ports) {
  const dir = join(data, 'demo');
  if (!existsSync(dir)) return [];
  const ours = new Set(Object.values(ports.apps).map(String));
  const pids = [];
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.pid'))) {
    const pid = Number(readFileSync(join(dir, f), 'utf8').trim().split(/\s+/)[0]);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    let args = [];
    try {
      args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    const i = args.indexOf('--port');
    if (args.includes('demo-app') && i >= 0 && ours.has(args[i + 1])) pids.push(pid);
  }
  return pids;
}

/**
 * Starts the system; returns { base, admin, ports, dir, logs(), stop() }. `demoStepMs` paces the
 * demo rebuild's lines (400 ms: a person can watch; tests that install many apps go faster).
 */
export async function startSystem({ demoStepMs = 400 } = {}) {
  const { bins, missing } = binaries();
  if (missing.length) throw new Error(`${missing.join(', ')} missing: run \`cargo build --workspace --bins\` first`);
  if (!existsSync(join(repo, 'web/dist/index.html'))) throw new Error('web/dist is not built: run `cd web && npm ci && npm run build`');
  const dir = mkdtempSync(join(tmpdir(), 'bloud-browser-e2e-'));
  const apps = catalogAppsWithPort();
  let lastErr;
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    const list = await freePorts(3 + apps.length);
    const ports = { web: list[0], admin: list[1], agent: list[2], apps: Object.fromEntries(apps.map((a, i) => [a, list[3 + i]])) };
    const paths = writeLayout(dir, ports, bins);
    rmSync(paths.pidFile, { force: true });
    const proxy = launch('bloud-proxy', bins.proxy, ['--config', join(dir, 'proxy.yml')], dir, paths.log, { NO_COLOR: '1' });
    let agent = null;
    const sys = {
      base: `http://127.0.0.1:${ports.web}`,
      admin: `http://127.0.0.1:${ports.admin}`,
      ports,
      dir,
      logs: () => [proxy, agent].filter(Boolean).map(describe).join('\n'),
      async stop({ keep = false } = {}) {
        await stopProc(agent);
        for (const pid of demoAppPids(paths.data, ports)) {
          try { process.kill(pid, 'SIGTERM'); } catch { /* already gone */ }
        }
        await stopProc(proxy);
        if (!keep) rmSync(dir, { recursive: true, force: true });
      },
    };
    try {
      await waitReady(proxy, `${sys.base}/ping`, paths.pidFile);
      agent = launch('bloud-agent', bins.agent, ['serve', '--config', join(dir, 'agent.yaml')], dir, paths.log, {
        // A person watching: the demo rebuild prints a line every 400 ms.
        BLOUD_DEMO_STEP_MS: String(demoStepMs),
        NO_COLOR: '1',
        RUST_LOG: 'info',
      });
      await waitReady(agent, `http://127.0.0.1:${ports.agent}/api/health`);
      await waitReady(agent, `${sys.base}/api/health`);
      return sys;
    } catch (e) {
      const logs = sys.logs();
      await sys.stop({ keep: true });
      lastErr = new Error(`${e.message}\n${logs}`);
      if (!/address already in use|addrinuse/i.test(logs)) break;
    }
  }
  rmSync(dir, { recursive: true, force: true });
  throw lastErr;
}
