#!/usr/bin/env node
// A stand-in for bloud-proxy + bloud-agent, for working on the shell without Rust or NixOS and for
// the browser check (scripts/browser-check.mjs). It serves web/dist with SPA fallback, an
// in-memory version of the API the shell uses (web/API.md), and one small embedded app, "demo",
// under /embed/demo/ whose page makes root-level requests the service worker must rewrite.
//
//   node scripts/mock-agent.mjs [--port 8080]      (port 0 picks a free one; prints "listening <url>")
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

const dist = fileURLToPath(new URL('../dist/', import.meta.url));
const portArg = process.argv.indexOf('--port');
const port = portArg > 0 ? Number(process.argv[portArg + 1]) : 8080;
const rebuildMs = Number(process.env.MOCK_REBUILD_MS ?? 1500);

const catalog = [
  { name: 'demo', displayName: 'Demo', description: 'A tiny app that makes root-level requests.', category: 'productivity', port: 9001, integrations: {} },
  { name: 'plain', displayName: 'Plain', description: 'Knows its base path (stripPrefix: false).', category: 'productivity', port: 9002, routing: { stripPrefix: false }, integrations: {} },
  {
    name: 'needy', displayName: 'Needy', description: 'Needs a demo to talk to.', category: 'media', port: 9003,
    integrations: { backend: { required: true, multi: false, compatible: [{ app: 'demo', default: true }] } },
  },
  {
    name: 'budget', displayName: 'Budget', description: 'Reads its server URL from localStorage (bootstrap intercept).', category: 'productivity', port: 9004,
    integrations: {},
    bootstrap: { localStorage: { intercepts: [{ key: 'server-url', value: '{{embedUrl}}' }] } },
  },
  { name: 'postgres', displayName: 'PostgreSQL', description: 'Database', category: 'infrastructure', isSystem: true, integrations: {} },
];

const users = new Map(); // username -> { id, password, role, apps: Set, createdAt }
const sessions = new Map(); // sid -> username
const stepUps = new Map(); // token -> { sid, action, expires }
let nextUserId = 1;
const installed = new Map(); // name -> InstalledApp
const appSubs = new Set();
const logSubs = new Set();
let nextId = 1;

const now = () => new Date().toISOString();
const json = (res, status, body, headers = {}) => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
};
const sse = (res, subs, initial) => {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  res.write(': hello\n\n');
  if (initial !== undefined) res.write(`data: ${JSON.stringify(initial)}\n\n`);
  subs.add(res);
  res.on('close', () => subs.delete(res));
};
const list = () => [...installed.values()].sort((a, b) => a.name.localeCompare(b.name));
const broadcastApps = () => { for (const s of appSubs) s.write(`data: ${JSON.stringify(list())}\n\n`); };
const logLine = (type, message, extra = {}) => { for (const s of logSubs) s.write(`data: ${JSON.stringify({ type, message, ...extra })}\n\n`); };
const setStatus = (name, status) => {
  const a = installed.get(name);
  if (!a) return;
  a.status = status;
  a.updated_at = now();
  broadcastApps();
};

function sidOf(req) {
  const m = /(?:^|;\s*)bloud_session=([^;]+)/.exec(req.headers.cookie ?? '');
  return m ? m[1] : null;
}
function userOf(req) {
  const sid = sidOf(req);
  return sid ? sessions.get(sid) ?? null : null;
}
const userJson = (name) => {
  const u = users.get(name);
  return { id: u.id, username: name, role: u.role };
};
const isAdmin = (name) => users.get(name)?.role === 'admin';
const visible = (name) => (isAdmin(name) ? list() : list().filter((a) => users.get(name)?.apps.has(a.name)));
/** The agent's step-up rule: a single-use token for this session and action (see docs/agent.md). */
function stepUpOk(req, res, action) {
  const token = req.headers['x-bloud-step-up'];
  const s = token && stepUps.get(token);
  if (s && s.sid === sidOf(req) && s.action === action && s.expires > Date.now()) {
    stepUps.delete(token);
    return true;
  }
  json(res, 403, { error: 'Confirm with your password to do this', stepUpRequired: true, action });
  return false;
}
const newUser = (name, password, role) =>
  users.set(name, { id: `u${nextUserId++}`, password, role, apps: new Set(), createdAt: now() });

async function body(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text) return {};
  try { return JSON.parse(text); } catch { return null; }
}

function runRebuild(apps, after) {
  logLine('output', `Running: rebuild for ${apps.join(', ')}`);
  const steps = ['evaluating configuration', 'building the system configuration...', 'activating the configuration...', 'starting units'];
  steps.forEach((s, i) => setTimeout(() => logLine('output', s), ((i + 1) * rebuildMs) / (steps.length + 1)));
  setTimeout(() => {
    logLine('complete', 'Rebuild completed successfully', { success: true });
    after();
  }, rebuildMs);
}

function planInstall(name) {
  const app = catalog.find((a) => a.name === name);
  const choices = [];
  const autoConfig = [];
  for (const [integration, spec] of Object.entries(app.integrations ?? {})) {
    const inst = spec.compatible.filter((c) => installed.has(c.app));
    const avail = spec.compatible.filter((c) => !installed.has(c.app));
    if (inst.length === 1) autoConfig.push({ target: name, source: inst[0].app, integration });
    else if (inst.length === 0 && spec.required) {
      choices.push({ integration, required: true, installed: [], available: avail, recommended: (avail.find((c) => c.default) ?? avail[0])?.app ?? '' });
    }
  }
  return { app: name, canInstall: true, blockers: null, choices, autoConfig, dependents: null };
}

const demoPage = (title) => `<!doctype html><html><head><title>${title}</title></head><body>
<h1>${title}</h1><p id="out">loading</p><p id="out2"></p>
<a id="root-link" href="/page2">root-level link</a> <a id="top-link" href="/page2" target="_top">whole-tab link</a>
<script>
  fetch('/data.json').then(r => r.text()).then(t => { document.getElementById('out').textContent = t; });
  window.fetchAgain = (q) => fetch('/data.json?' + q).then(r => r.text());
</script></body></html>`;

/** The "demo" app as its upstream would answer after the proxy stripped /embed/demo. */
function demoApp(path, res) {
  const [p] = path.split('?');
  if (p === '/data.json') return json(res, 200, { from: 'demo', path });
  if (p === '/' || p === '') { res.writeHead(200, { 'content-type': 'text/html' }); return res.end(demoPage('Demo home')); }
  if (p === '/page2') { res.writeHead(200, { 'content-type': 'text/html' }); return res.end(demoPage('Demo page 2')); }
  if (p === '/old') { res.writeHead(302, { location: '/page2' }); return res.end(); }
  if (p === '/redir-data') { res.writeHead(302, { location: '/data.json?via=redirect' }); return res.end(); }
  res.writeHead(404, { 'content-type': 'text/plain' });
  res.end('demo: not found ' + p);
}

const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml', '.map': 'application/json', '.json': 'application/json' };

async function serveStatic(path, res) {
  const rel = normalize(decodeURIComponent(path)).replace(/^([/\\])+/, '');
  if (rel.startsWith('..')) { res.writeHead(400); return res.end(); }
  const file = rel === '' ? join(dist, 'index.html') : join(dist, rel);
  try {
    const data = await readFile(file);
    const headers = { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' };
    if (rel === 'service-worker.js') headers['cache-control'] = 'no-cache';
    res.writeHead(200, headers);
    res.end(data);
  } catch {
    const index = await readFile(join(dist, 'index.html'));
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(index);
  }
}

const server = createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  const path = url.pathname;
  const m = req.method;
  try {
    if (path === '/embed/demo' || path.startsWith('/embed/demo/')) return demoApp(path.slice('/embed/demo'.length) + url.search, res);
    if (path === '/embed/budget' || path.startsWith('/embed/budget/')) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      return res.end(`<!doctype html><html><head><title>Budget</title></head><body><h1>Budget</h1>
<p id="server"></p><script>document.getElementById('server').textContent = 'server-url=' + localStorage.getItem('server-url');</script></body></html>`);
    }
    if (path.startsWith('/embed/')) { res.writeHead(404, { 'content-type': 'text/html' }); return res.end('<h1>app not installed</h1>'); }
    if (path === '/openid-cb') { res.writeHead(200, { 'content-type': 'text/html' }); return res.end(demoPage('Demo OAuth callback')); }

    if (path === '/api/setup/status') return json(res, 200, { setupRequired: users.size === 0, authentikReady: false });
    if (path === '/api/setup/create-user' && m === 'POST') {
      if (users.size > 0) return json(res, 409, { success: false, error: 'Setup already completed' });
      const b = await body(req);
      if (!b || !/^[A-Za-z0-9_]{3,30}$/.test(b.username ?? '') || (b.password ?? '').length < 8) return json(res, 400, { success: false, error: 'Invalid username or password' });
      newUser(b.username, b.password, 'admin');
      return json(res, 200, { success: true, loginUrl: '/login' });
    }
    if (path === '/api/auth/login' && m === 'POST') {
      const b = await body(req);
      if (!b || users.get(b.username)?.password !== b.password) return json(res, 401, { error: 'Invalid username or password' });
      const sid = Math.random().toString(36).slice(2);
      sessions.set(sid, b.username);
      return json(res, 200, userJson(b.username), { 'set-cookie': `bloud_session=${sid}; Path=/; HttpOnly; SameSite=Lax` });
    }
    if (path === '/api/auth/logout' && m === 'POST') return json(res, 200, {}, { 'set-cookie': 'bloud_session=; Path=/; Max-Age=0' });
    if (path === '/api/auth/me') {
      const u = userOf(req);
      return u ? json(res, 200, userJson(u)) : json(res, 401, { error: 'Not authenticated' });
    }
    if (path.startsWith('/api/')) {
      const me = userOf(req);
      if (!me) return json(res, 401, { error: 'Not authenticated' });
      if (path === '/api/auth/step-up' && m === 'POST') {
        const b = await body(req);
        if (!b?.action) return json(res, 400, { error: 'action is required' });
        if (users.get(me).password !== b.password) return json(res, 403, { error: 'Wrong password' });
        const token = Math.random().toString(36).slice(2);
        stepUps.set(token, { sid: sidOf(req), action: b.action, expires: Date.now() + 120_000 });
        return json(res, 200, { token, action: b.action, expiresIn: 120 });
      }
      if (path === '/api/apps') return json(res, 200, { apps: catalog.filter((a) => a.category !== 'infrastructure') });
      if (path === '/api/apps/installed') return json(res, 200, visible(me));
      // (The real agent filters live updates per member too; the mock sends members their list once.)
      if (path === '/api/apps/events') return sse(res, isAdmin(me) ? appSubs : new Set(), visible(me));
      if (!isAdmin(me) && !/^\/api\/apps\/[^/]+\/(metadata|icon)$/.test(path)) {
        return json(res, 403, { error: "Only an administrator can do this; ask one of your Bloud's admins" });
      }
      if (path === '/api/users' && m === 'GET') {
        return json(res, 200, [...users].map(([username, u]) => ({ id: u.id, username, role: u.role, createdAt: u.createdAt, apps: [...u.apps].sort() })));
      }
      if (path === '/api/users' && m === 'POST') {
        const b = await body(req);
        if (!b || !/^[A-Za-z0-9_]{3,30}$/.test(b.username ?? '') || (b.password ?? '').length < 8) return json(res, 400, { error: 'Invalid username or password' });
        if (!stepUpOk(req, res, 'users.add')) return;
        if (users.has(b.username)) return json(res, 409, { error: 'That username is taken' });
        newUser(b.username, b.password, b.role === 'admin' ? 'admin' : 'member');
        for (const a of b.apps ?? []) users.get(b.username).apps.add(a);
        return json(res, 201, userJson(b.username));
      }
      const um = /^\/api\/users\/([^/]+)(?:\/(password|role|apps))?$/.exec(path);
      if (um) {
        const entry = [...users].find(([, u]) => u.id === um[1]);
        const what = um[2] ?? 'remove';
        const b = m === 'DELETE' ? {} : await body(req);
        if (!stepUpOk(req, res, `users.${what}:${um[1]}`)) return;
        if (!entry) return json(res, 404, { error: 'User not found' });
        const [name, u] = entry;
        const admins = [...users.values()].filter((x) => x.role === 'admin').length;
        if ((what === 'remove' || (what === 'role' && b.role === 'member')) && u.role === 'admin' && admins === 1) {
          return json(res, 409, { error: 'This is the last administrator; make another user an admin first' });
        }
        if (what === 'remove') {
          users.delete(name);
          for (const [sid, n] of sessions) if (n === name) sessions.delete(sid);
        } else if (what === 'password') {
          u.password = b.password;
          for (const [sid, n] of sessions) if (n === name && sid !== sidOf(req)) sessions.delete(sid);
        } else if (what === 'role') u.role = b.role === 'admin' ? 'admin' : 'member';
        else u.apps = new Set(b.apps ?? []);
        return json(res, 200, { status: 'ok', id: u.id });
      }
      if (path === '/api/rebuilds/stream') return sse(res, logSubs);
      const am = /^\/api\/apps\/([^/]+)\/([a-z-]+)$/.exec(path);
      const app = am && catalog.find((a) => a.name === am[1]);
      if (am && !app) return json(res, 404, { error: `unknown app: ${am[1]}` });
      if (am) {
        const name = app.name;
        switch (am[2]) {
          case 'metadata': return json(res, 200, app);
          case 'icon': res.writeHead(404); return res.end('no icon');
          case 'plan-install': return json(res, 200, planInstall(name));
          case 'plan-remove': return json(res, 200, { app: name, canRemove: true, blockers: [], willUnconfigure: [] });
          case 'install': {
            if (m !== 'POST') break;
            const b = await body(req);
            const add = [name, ...Object.values(b?.choices ?? {})].filter((n) => !installed.has(n));
            for (const n of add) {
              const c = catalog.find((a) => a.name === n);
              installed.set(n, { id: nextId++, name: n, display_name: c?.displayName ?? n, version: '', status: 'installing', is_system: false, installed_at: now(), updated_at: now() });
            }
            broadcastApps();
            return runRebuild(add, () => {
              for (const n of add) setStatus(n, 'starting');
              setTimeout(() => {
                for (const n of add) setStatus(n, 'running');
                json(res, 200, { app: name, success: true, appsInstalled: add });
              }, 200);
            });
          }
          case 'clear-data': {
            if (m !== 'POST') break;
            if (!stepUpOk(req, res, `apps.clear-data:${name}`)) return;
            return json(res, 200, { status: 'data cleared', app: name });
          }
          case 'uninstall': {
            if (m !== 'POST') break;
            const b = await body(req);
            if (b?.clearData && !stepUpOk(req, res, `apps.uninstall-data:${name}`)) return;
            setStatus(name, 'uninstalling');
            return runRebuild([name], () => {
              installed.delete(name);
              broadcastApps();
              json(res, 200, { app: name, success: true });
            });
          }
        }
      }
      return json(res, 404, { error: 'not found' });
    }
    return serveStatic(path, res);
  } catch (err) {
    json(res, 500, { error: String(err) });
  }
});

server.listen(port, '127.0.0.1', () => {
  const { port: p } = server.address();
  console.log(`listening http://127.0.0.1:${p}`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
