// A Bloud system for the corpus: the real bloud-proxy in front, the real bloud-agent behind it
// (API, forward-auth check, the built shell from web/dist), and a corpus catalog: one
// `metadata.yaml` per corpus app with its port and nothing else, so the agent writes for it
// exactly the route it writes for any app. Apps are installed through the agent's own install
// path (`bloud-agent install <app>` over its socket); the agent's rebuild step is `true`
// because the harness has already started the real apps (the agent then health-checks them on
// their ports like any installed app).
//
// The agent is restarted between modes with another `publicUrl` (the origin the browser uses
// in that mode, as a real box has it) and, for the comparison-only `strip` run, with
// `routing.embed.enabled: false` in each corpus entry (the agent's route without the proxy's
// rewriting: plain stripPrefix like Traefik). It regenerates the routes on start and signals
// the proxy, as it does on a real box after a configuration change.
import { spawn, spawnSync } from 'node:child_process';
import {
  createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts, repo, stopProc, waitHttp } from './procs.mjs';

export function binaries() {
  const target = process.env.CARGO_TARGET_DIR ? join(process.env.CARGO_TARGET_DIR) : join(repo, 'target');
  const bins = { proxy: join(target, 'debug', 'bloud-proxy'), agent: join(target, 'debug', 'bloud-agent') };
  const missing = Object.values(bins).filter((b) => !existsSync(b));
  if (missing.length) throw new Error(`${missing.join(', ')} missing: run \`cargo build --workspace --bins\` first`);
  if (!existsSync(join(repo, 'web/dist/index.html'))) throw new Error('web/dist is not built: run `cd web && npm ci && npm run build`');
  return bins;
}

function cleanEnv(extra) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('BLOUD_')) env[k] = v;
  return { ...env, ...extra };
}

function launch(name, bin, args, dir, logDir, env) {
  const out = join(logDir, `${name}.log`);
  const stream = createWriteStream(out, { flags: 'a' });
  const child = spawn(bin, args, { cwd: dir, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(stream, { end: false });
  child.stderr.pipe(stream, { end: false });
  const proc = { name, child, log: out, exited: null };
  child.on('exit', (code, signal) => { proc.exited = signal ?? `exit ${code}`; });
  return proc;
}

/** One catalog entry as a user of the catalog would write it: name, port, health check. */
function metadataYaml(app, port, strip) {
  const lines = [
    `name: ${app.name}`,
    `displayName: ${app.name}`,
    `description: ${JSON.stringify(`${app.stack} (corpus app)`)}`,
    'category: productivity',
    `port: ${port}`,
    'healthCheck:',
    `  path: ${app.ready?.path ?? '/'}`,
    '  interval: 1',
    '  timeout: 60',
  ];
  // Comparison run only: the same route without the proxy's rewriting (no embed middleware).
  if (strip) lines.push('routing:', '  embed:', '    enabled: false');
  return `${lines.join('\n')}\n`;
}

/**
 * Starts bloud-proxy; `configure({ publicUrl, strip })` (re)starts bloud-agent with that setting;
 * `install(names)` installs apps through the agent's CLI.
 */
export async function startSystem(apps, appPorts) {
  const bins = binaries();
  const dir = mkdtempSync(join(tmpdir(), 'bloud-corpus-'));
  const routes = join(dir, 'routes');
  const data = join(dir, 'data');
  const log = join(dir, 'log');
  const catalog = join(dir, 'apps');
  for (const d of [routes, data, log, catalog]) mkdirSync(d, { recursive: true });
  const [web, admin, agentPort] = await freePorts(3);
  const base = readFileSync(join(repo, 'config/routes/base.yml'), 'utf8');
  if (!base.includes('http://127.0.0.1:3000')) {
    throw new Error('config/routes/base.yml no longer points host-agent at http://127.0.0.1:3000; update tests/corpus/lib/system.mjs');
  }
  writeFileSync(join(routes, 'base.yml'), base.replaceAll('http://127.0.0.1:3000', `http://127.0.0.1:${agentPort}`));
  const pidFile = join(dir, 'bloud-proxy.pid');
  writeFileSync(join(dir, 'proxy.yml'), [
    'entryPoints:',
    `  web: { address: "127.0.0.1:${web}", forwardedHeaders: { trustedIPs: [] } }`,
    `  admin: { address: "127.0.0.1:${admin}" }`,
    `providers:\n  file: { directory: "${routes}", watch: false }`,
    'ping: { entryPoint: web }',
    'api: { entryPoint: admin }',
    `accessLog: { filePath: "${join(log, 'access.log')}", format: json }`,
    'log: { level: info }',
    `pidFile: "${pidFile}"`,
    'lifeCycle: { graceTimeOut: 2s }',
    '',
  ].join('\n'));
  const agentYaml = join(dir, 'agent.yaml');
  const writeAgentConfig = (publicUrl) => writeFileSync(agentYaml, [
    `listen: 127.0.0.1:${agentPort}`,
    `appsDir: "${catalog}"`,
    `dataDir: "${data}"`,
    `routesDir: "${routes}"`,
    `proxyPidFile: "${pidFile}"`,
    `webDir: "${join(repo, 'web', 'dist')}"`,
    `publicUrl: "${publicUrl}"`,
    'rebuild:',
    '  mode: command',
    '  command: ["true"]',
    'queue:',
    '  batchWindow: 200ms',
    '',
  ].join('\n'));
  const writeCatalog = (strip) => {
    for (const app of apps) {
      mkdirSync(join(catalog, app.name), { recursive: true });
      writeFileSync(join(catalog, app.name, 'metadata.yaml'), metadataYaml(app, appPorts[app.name], strip));
    }
  };

  const proxy = launch('bloud-proxy', bins.proxy, ['--config', join(dir, 'proxy.yml')], dir, log, { NO_COLOR: '1' });
  let agent = null;
  const sys = {
    dir,
    web,
    routesFile: join(routes, 'apps-routes.yml'),
    logs: () => [proxy, agent].filter(Boolean).map((p) => `----- ${p.name} -----\n${existsSync(p.log) ? readFileSync(p.log, 'utf8').slice(-8000) : ''}`).join('\n'),
    /** (Re)starts the agent with this public URL and catalog variant; waits until the proxy serves the new routes. */
    async configure({ publicUrl, strip }) {
      await stopProc(agent);
      writeAgentConfig(publicUrl);
      writeCatalog(strip);
      const before = existsSync(sys.routesFile) ? readFileSync(sys.routesFile, 'utf8') : null;
      agent = launch('bloud-agent', bins.agent, ['serve', '--config', agentYaml], dir, log, { NO_COLOR: '1', RUST_LOG: 'info' });
      await waitHttp(`http://127.0.0.1:${agentPort}/api/health`, { proc: agent, timeoutMs: 30_000 });
      await waitHttp(`http://127.0.0.1:${web}/api/health`, { proc: proxy, timeoutMs: 30_000 });
      // Only the catalog variant (stripPrefix) changes the routes: apps get the proxy's own
      // X-Forwarded-* (the request's host and scheme), so publicUrl no longer appears in them.
      if (before !== null && strip !== sys.strip) await sys.waitRoutes((text) => text !== before, 'the agent rewrote the routes for the new settings');
      sys.strip = strip;
    },
    /** Installs apps with `bloud-agent install` (the agent's own install path, over its socket). */
    install(names) {
      for (const name of names) {
        const r = spawnSync(bins.agent, ['install', name, '--config', agentYaml], { encoding: 'utf8', timeout: 60_000, env: cleanEnv({ NO_COLOR: '1' }) });
        if (r.status !== 0) throw new Error(`bloud-agent install ${name} failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
      }
    },
    /** Waits until the proxy answers an app route other than with the agent's "not installed" page. */
    async waitRoutes(pred, what) {
      const started = Date.now();
      for (;;) {
        const text = existsSync(sys.routesFile) ? readFileSync(sys.routesFile, 'utf8') : '';
        if (pred(text)) return text;
        if (Date.now() - started > 30_000) throw new Error(`timed out waiting until ${what}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async stop({ keep = false } = {}) {
      await stopProc(agent);
      await stopProc(proxy);
      if (!keep) rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await waitHttp(`http://127.0.0.1:${web}/ping`, { proc: proxy, timeoutMs: 30_000, also: () => existsSync(pidFile) });
  } catch (e) {
    const logs = sys.logs();
    await sys.stop({ keep: true });
    throw new Error(`${e.message}\n${logs}`);
  }
  return sys;
}
