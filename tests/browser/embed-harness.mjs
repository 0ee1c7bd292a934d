// Pieces of the proxy-only embed test (embed.test.mjs): the real bloud-proxy binary on free
// loopback ports with a routes dir written here, a host page server that embeds the app in an
// iframe, and an AdGuard-style app that knows nothing about /embed/<app>/ (the proxy strips the
// prefix before it sees a request, as it does for the real AdGuard Home).
import { spawn } from 'node:child_process';
import {
  createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync,
} from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repo = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const STARTUP_MS = 20_000;
const ATTEMPTS = 4;

export function proxyBinary() {
  const target = process.env.CARGO_TARGET_DIR ? resolve(repo, process.env.CARGO_TARGET_DIR) : join(repo, 'target');
  const bin = join(target, 'debug', 'bloud-proxy');
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run \`cargo build -p bloud-proxy --bins\` first`);
  const src = join(repo, 'proxy', 'src');
  if (existsSync(src) && newestMtime(src) > statSync(bin).mtimeMs) {
    console.warn(`warning: ${bin} is older than proxy/src; run \`cargo build -p bloud-proxy --bins\``);
  }
  return bin;
}

function newestMtime(dir) {
  let newest = 0;
  for (const entry of readdirRecursive(dir)) newest = Math.max(newest, statSync(entry).mtimeMs);
  return newest;
}

function* readdirRecursive(dir) {
  for (const name of readdirSafe(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) yield* readdirRecursive(p);
    else yield p;
  }
}

function readdirSafe(dir) {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

export async function freePort() {
  return new Promise((ok, fail) => {
    const s = createNetServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

/** Starts a node http server on a free 127.0.0.1 port; returns { server, port, close() }. */
export async function listen(handler) {
  const server = createHttpServer(handler);
  await new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', ok);
  });
  return {
    server,
    port: server.address().port,
    close: () => new Promise((ok) => {
      server.closeAllConnections();
      server.close(() => ok());
    }),
  };
}

/** The page a person opens: the shell stand-in, embedding the app in an iframe. */
export function hostHandler(app) {
  return (req, res) => {
    if (req.method === 'GET' && req.url === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(`<!doctype html>
<html><head><meta charset="utf-8"><title>Embed host</title>
<style>body{margin:0;font-family:sans-serif} header{padding:8px 12px;background:#223;color:#fff}
iframe{width:100%;height:560px;border:0}</style></head>
<body><header id="host-header">Host page (no service worker)</header>
<iframe id="app-frame" title="${app}" src="/embed/${app}/"></iframe>
</body></html>`);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found\n');
  };
}

// A 1x1 opaque PNG.
export const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==',
  'base64',
);

export const APP_CSS_BACKGROUND = 'rgb(12, 34, 56)';

const page = (title, body, extraHead = '') => `<!doctype html>
<html><head><meta charset="utf-8"><title>${title}</title>
<link rel="stylesheet" href="/static/app.css">${extraHead}</head>
<body><h1>${title}</h1>${body}</body></html>`;

/**
 * An AdGuard-style app served stripped: it answers root paths only and records every request
 * it gets in `seen` ({ method, url, body }). Any path under /embed/ is a 404 here, so a prefix
 * the proxy failed to strip shows up as a failure.
 */
export function adguardHandler(seen) {
  return (req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      seen.push({ method: req.method, url: req.url, body, prefix: req.headers['x-forwarded-prefix'] ?? null });
      const path = req.url.split('?')[0];
      const send = (status, type, text, extra = {}) => {
        res.writeHead(status, { 'content-type': type, ...extra });
        res.end(text);
      };
      if (req.method === 'GET' && path === '/') {
        send(302, 'text/html; charset=utf-8', '<a href="/install.html">Found</a>.\n', { location: '/install.html' });
      } else if (req.method === 'GET' && path === '/install.html') {
        send(200, 'text/html; charset=utf-8', page('AdGuard Home setup', `
<p><img id="logo" src="/static/logo.png" width="32" height="32" alt="logo"></p>
<form id="install" method="post" action="/control/install">
  <label>Admin user <input name="username" value="admin"></label>
  <button type="submit">Install</button>
</form>
<p><a id="to-dashboard" href="/dashboard.html">Open the dashboard</a></p>`,
        '\n<script src="/static/app.js" defer></script>'));
      } else if (req.method === 'POST' && path === '/control/install') {
        send(302, 'text/plain', 'installed\n', { location: '/login.html' });
      } else if (req.method === 'GET' && path === '/login.html') {
        send(200, 'text/html; charset=utf-8', page('AdGuard Home login', '<p id="login-text">Sign in to AdGuard Home.</p>'));
      } else if (req.method === 'GET' && path === '/dashboard.html') {
        send(200, 'text/html; charset=utf-8', page('AdGuard Home dashboard',
          '<p id="dashboard-text">Queries blocked today: 42.</p><p><a id="to-install" href="/install.html">Back to setup</a></p>'));
      } else if (req.method === 'GET' && path === '/static/app.css') {
        send(200, 'text/css; charset=utf-8',
          `body { background: ${APP_CSS_BACKGROUND} url(/static/bg.png) repeat; color: rgb(250, 250, 250); }\nh1 { font-size: 22px; }\n`);
      } else if (req.method === 'GET' && path === '/static/app.js') {
        send(200, 'text/javascript; charset=utf-8', `(() => {
  const p = document.createElement('p');
  p.id = 'js-marker';
  p.textContent = 'app.js ran';
  document.body.appendChild(p);
  document.body.dataset.appJs = 'ran';
})();\n`);
      } else if (req.method === 'GET' && (path === '/static/logo.png' || path === '/static/bg.png')) {
        send(200, 'image/png', PNG);
      } else {
        send(404, 'text/plain', `no ${path} here\n`);
      }
    });
  };
}

/** The app's routes exactly in the shape bloud-agent writes them (agent/tests/golden/basic_app.yml). */
export function appRoutesYaml(app, appPort, publicHost, publicPort, { exclude = [] } = {}) {
  return `# Generated by bloud-agent - DO NOT EDIT MANUALLY
# Routes of the installed apps; bloud-proxy reloads this file when it changes

http:
  routers:
    ${app}-backend:
      rule: "Path(\`/embed/${app}\`) || PathPrefix(\`/embed/${app}/\`)"
      priority: 100
      middlewares:
        - ${app}-stripprefix
        - ${app}-embed
        - iframe-headers
        - embed-isolation
        - embed-forwarded-headers
      service: ${app}

  middlewares:
    ${app}-stripprefix:
      stripPrefix:
        prefixes:
          - "/embed/${app}"
    ${app}-embed:
      embed:
        prefix: "/embed/${app}"
        location: true
        html: true
        css: true
        cookiePath: false
        exclude: ${JSON.stringify(exclude)}
    embed-forwarded-headers:
      headers:
        customRequestHeaders:
          X-Forwarded-Host: "${publicHost}"
          X-Forwarded-Port: "${publicPort}"
          X-Forwarded-Proto: "http"
    embed-isolation:
      headers:
        customResponseHeaders:
          Cross-Origin-Embedder-Policy: "credentialless"
          Cross-Origin-Opener-Policy: "same-origin"
    iframe-headers:
      headers:
        customResponseHeaders:
          Content-Security-Policy: ""
          X-Frame-Options: ""

  services:
    ${app}:
      loadBalancer:
        servers:
          - url: "http://127.0.0.1:${appPort}"
`;
}

/** The host page as the catch-all, like the shell's `bloud-ui` route in config/routes/base.yml. */
function hostRoutesYaml(hostPort) {
  return `http:
  routers:
    host-page:
      rule: "PathPrefix(\`/\`)"
      priority: 1
      middlewares:
        - cross-origin-isolation
      service: host-page
  middlewares:
    cross-origin-isolation:
      headers:
        customResponseHeaders:
          Cross-Origin-Opener-Policy: "same-origin"
          Cross-Origin-Embedder-Policy: "credentialless"
  services:
    host-page:
      loadBalancer:
        servers:
          - url: "http://127.0.0.1:${hostPort}"
`;
}

const readLog = (p) => (existsSync(p) ? readFileSync(p, 'utf8').slice(-20_000) : '');

/**
 * Starts bloud-proxy in front of the host page (`/`) and the app (`/embed/<app>/`); retries with
 * new ports when one was taken. Returns { base, logs(), stop() }.
 */
export async function startProxy({ app, appPort, hostPort, exclude = [] }) {
  const bin = proxyBinary();
  const dir = mkdtempSync(join(tmpdir(), 'bloud-embed-browser-'));
  const routes = join(dir, 'routes');
  mkdirSync(routes);
  writeFileSync(join(routes, 'base.yml'), hostRoutesYaml(hostPort));
  let lastErr;
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    const web = await freePort();
    let admin = await freePort();
    while (admin === web) admin = await freePort();
    writeFileSync(join(routes, 'apps-routes.yml'), appRoutesYaml(app, appPort, `127.0.0.1:${web}`, web, { exclude }));
    const pidFile = join(dir, 'bloud-proxy.pid');
    rmSync(pidFile, { force: true });
    writeFileSync(join(dir, 'proxy.yml'), [
      'entryPoints:',
      `  web: { address: "127.0.0.1:${web}", forwardedHeaders: { trustedIPs: [] } }`,
      `  admin: { address: "127.0.0.1:${admin}" }`,
      `providers:\n  file: { directory: "${routes}", watch: false }`,
      'ping: { entryPoint: web }',
      'metrics: { prometheus: { entryPoint: admin } }',
      'api: { entryPoint: admin }',
      `accessLog: { filePath: "${join(dir, 'access.log')}", format: json }`,
      'log: { level: info }',
      `pidFile: "${pidFile}"`,
      'lifeCycle: { graceTimeOut: 2s }',
      '',
    ].join('\n'));
    const out = join(dir, `stdout-${attempt}.log`);
    const err = join(dir, `stderr-${attempt}.log`);
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('BLOUD_')));
    const child = spawn(bin, ['--config', join(dir, 'proxy.yml')], {
      cwd: dir,
      env: { ...env, NO_COLOR: '1', RUST_BACKTRACE: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.pipe(createWriteStream(out));
    child.stderr.pipe(createWriteStream(err));
    let exited = null;
    const exit = new Promise((ok) => child.once('exit', (code, signal) => { exited = signal ?? `exit ${code}`; ok(); }));
    const base = `http://127.0.0.1:${web}`;
    const logs = () => [
      `----- bloud-proxy stdout -----\n${readLog(out)}`,
      `----- bloud-proxy stderr -----\n${readLog(err)}`,
      `----- access.log -----\n${readLog(join(dir, 'access.log'))}`,
    ].join('\n');
    const stop = async ({ keep = false } = {}) => {
      if (!exited) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exit;
        clearTimeout(t);
      }
      if (!keep) rmSync(dir, { recursive: true, force: true });
    };
    const proxy = { base, pid: child.pid, child, logs, stop, dir };
    try {
      const started = Date.now();
      let last = 'no answer yet';
      for (;;) {
        if (exited) throw new Error(`bloud-proxy exited during startup (${exited})`);
        try {
          const r = await fetch(`${base}/ping`, { signal: AbortSignal.timeout(2000) });
          if (r.status === 200 && existsSync(pidFile)) return proxy;
          last = `HTTP ${r.status}`;
        } catch (e) {
          last = String(e);
        }
        if (Date.now() - started > STARTUP_MS) throw new Error(`bloud-proxy did not answer 200 on ${base}/ping within ${STARTUP_MS} ms (last: ${last})`);
        await new Promise((r) => setTimeout(r, 50));
      }
    } catch (e) {
      const text = logs();
      await stop({ keep: true });
      lastErr = new Error(`${e.message}\n${text}`);
      if (!/address already in use|addrinuse/i.test(text)) break;
    }
  }
  rmSync(dir, { recursive: true, force: true });
  throw lastErr;
}
