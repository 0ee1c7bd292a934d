// The corpus app modules (tests/corpus/apps/*.mjs), their executables, and starting them.
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { corpusDir, stopGroup, waitHttp } from './procs.mjs';

const NAME = /^[a-z0-9][a-z0-9-]*$/;
export const TAGS = ['server-rendered', 'jquery-extjs', 'spa', 'websocket', 'sse-longpoll', 'absolute-redirect', 'form'];

/** Every app module, sorted by name; `only` (names) narrows them. */
export async function loadApps(only = null) {
  const dir = join(corpusDir, 'apps');
  const apps = [];
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.mjs')).sort()) {
    const mod = (await import(pathToFileURL(join(dir, f)).href)).default;
    const problems = [];
    if (!mod || typeof mod !== 'object') problems.push('no default export');
    else {
      if (!NAME.test(mod.name ?? '') || `${mod.name}.mjs` !== f) problems.push(`name must be [a-z0-9-] and match the file name (${mod.name})`);
      if (!['pypi', 'debian', 'npm'].includes(mod.source?.ecosystem)) problems.push('source.ecosystem must be pypi, debian or npm');
      if (typeof mod.start !== 'function' || typeof mod.exercise !== 'function') problems.push('start() and exercise() are required');
      for (const t of mod.covers ?? []) if (!TAGS.includes(t)) problems.push(`unknown covers tag ${t}`);
    }
    if (problems.length) throw new Error(`tests/corpus/apps/${f}: ${problems.join('; ')}`);
    apps.push(mod);
  }
  if (only) {
    const unknown = only.filter((n) => !apps.some((a) => a.name === n));
    if (unknown.length) throw new Error(`no such corpus app: ${unknown.join(', ')} (have: ${apps.map((a) => a.name).join(', ')})`);
    return apps.filter((a) => only.includes(a.name));
  }
  return apps;
}

/** Absolute path of an installed executable: the venv, the app's npm dir, then the system. */
export function binFor(app) {
  return (cmd) => {
    const dirs = [join(corpusDir, '.venv', 'bin')];
    if (app.source.ecosystem === 'npm') dirs.unshift(join(corpusDir, app.source.dir, 'node_modules', '.bin'));
    dirs.push('/usr/bin', '/usr/sbin', '/bin');
    for (const d of dirs) if (existsSync(join(d, cmd))) return join(d, cmd);
    throw new Error(`${app.name}: executable ${cmd} not found (run tests/corpus/install)`);
  };
}

/** Starts one app on `port` with its state in a fresh temp dir; resolves when it is ready. */
export async function startApp(app, port, logDir) {
  const dir = mkdtempSync(join(tmpdir(), `bloud-corpus-${app.name}-`));
  const logPath = join(logDir, `${app.name}.log`);
  const log = createWriteStream(logPath);
  await new Promise((r) => log.once('open', r));
  const env = { ...process.env, HOME: dir, NO_COLOR: '1', PYTHONUNBUFFERED: '1' };
  for (const k of Object.keys(env)) if (k.startsWith('BLOUD_')) delete env[k];
  const child = await app.start({ port, dir, bin: binFor(app), env, log });
  if (!child?.pid) throw new Error(`${app.name}: start() returned no process`);
  const proc = { name: app.name, child, exited: null, dir, logPath };
  child.on('exit', (code, signal) => { proc.exited = signal ?? `exit ${code}`; });
  const budget = 60_000 + 1000 * (app.startSeconds ?? 0);
  const ready = app.ready ?? { path: '/', status: [200] };
  try {
    await waitHttp(`http://127.0.0.1:${port}${ready.path}`, { proc, timeoutMs: budget, status: ready.status ?? [200] });
  } catch (e) {
    await stopGroup(child);
    throw new Error(`${app.name} did not start: ${e.message} (log: ${logPath})`);
  }
  return proc;
}
