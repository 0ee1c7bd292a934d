// A Bloud system with one catalog app that is a real, unmodified OpenID Connect relying party:
// Debian's Apache with mod_auth_openidc (libapache2-mod-auth-openidc), run as the test's own user
// on a free loopback port from a generated config. bloud-proxy is in front, bloud-agent behind it
// with a catalog holding only that app (`sso.strategy: native-oidc`, served under its own
// `/embed/<app>/` prefix, so `routing.stripPrefix: false`). The app is installed through the
// agent's own install path (`bloud-agent install` over its socket); the agent's rebuild step is
// `true` because the test has already started Apache, and the agent health-checks it on its port
// like any installed app. The OIDC client is registered through the agent's admin API on its Unix
// socket, as docs/sso.md tells an operator to.
//
// Apache fetches discovery, the JWKS and the token endpoint server-side; the issuer is the public
// URL, which here is the proxy's loopback address, so those requests go through bloud-proxy too.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync,
} from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { binaries, repo } from './system.mjs';

export const APP = 'oidc-rp';
export const CLIENT_ID = 'apache-mod-auth-openidc';
const APACHE = process.env.APACHE2 ?? '/usr/sbin/apache2';
const MODULES = '/usr/lib/apache2/modules';
const NEEDED_MODULES = ['mod_mpm_event.so', 'mod_authn_core.so', 'mod_authz_core.so', 'mod_authz_user.so', 'mod_dir.so', 'mod_headers.so', 'mod_include.so', 'mod_auth_openidc.so'];

/** Why the test cannot run here, or false. */
export function missingApache() {
  if (!existsSync(APACHE)) return `${APACHE} is missing (scripts/ensure-deps test installs apache2)`;
  const gone = NEEDED_MODULES.filter((m) => !existsSync(join(MODULES, m)));
  if (gone.length) return `${gone.join(', ')} missing in ${MODULES} (scripts/ensure-deps test installs libapache2-mod-auth-openidc)`;
  return false;
}

async function freePorts(n) {
  const set = new Set();
  while (set.size < n) {
    set.add(await new Promise((ok, fail) => {
      const s = createServer();
      s.once('error', fail);
      s.listen(0, '127.0.0.1', () => {
        const { port } = s.address();
        s.close(() => ok(port));
      });
    }));
  }
  return [...set];
}

function cleanEnv(extra) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('BLOUD_') && !k.startsWith('APACHE_')) env[k] = v;
  return { ...env, ...extra };
}

function launch(name, bin, args, dir, logDir, env) {
  const log = join(logDir, `${name}.log`);
  const stream = createWriteStream(log, { flags: 'a' });
  const child = spawn(bin, args, { cwd: dir, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(stream, { end: false });
  child.stderr.pipe(stream, { end: false });
  const proc = { name, child, log, exited: null };
  child.on('exit', (code, signal) => { proc.exited = signal ?? `exit ${code}`; });
  return proc;
}

async function stopProc(proc, graceMs = 5000) {
  if (!proc || proc.exited) return;
  const done = new Promise((r) => proc.child.once('exit', r));
  proc.child.kill('SIGTERM');
  const t = setTimeout(() => proc.child.kill('SIGKILL'), graceMs);
  await done;
  clearTimeout(t);
}

async function waitHttp(url, { proc, timeoutMs = 30_000, also = () => true }) {
  const started = Date.now();
  let last = 'no answer yet';
  for (;;) {
    if (proc?.exited) throw new Error(`${proc.name} exited during startup (${proc.exited})`);
    try {
      const r = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(2000) });
      await r.arrayBuffer();
      if (r.status === 200 && also()) return;
      last = `HTTP ${r.status}`;
    } catch (e) {
      last = String(e.cause?.code ?? e);
    }
    if (Date.now() - started > timeoutMs) throw new Error(`${proc?.name ?? url} did not answer 200 on ${url} within ${timeoutMs} ms (last: ${last})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A JSON request to the agent's API over its Unix socket (the CLI's and operator's way in). */
export function socketJson(socketPath, method, path, body) {
  return new Promise((ok, fail) => {
    const data = body === undefined ? null : JSON.stringify(body);
    const req = request({
      socketPath, method, path, host: 'localhost',
      headers: data ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {},
      timeout: 10_000,
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { text += c; });
      res.on('end', () => {
        let json = null;
        try { json = JSON.parse(text); } catch { /* not JSON */ }
        ok({ status: res.statusCode, json, text });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} on ${socketPath}: no answer in 10 s`)));
    req.on('error', fail);
    if (data) req.write(data);
    req.end();
  });
}

/** The app's catalog entry, as a catalog author would write it for an app that speaks OIDC. */
function metadataYaml(port) {
  return [
    `name: ${APP}`,
    'displayName: Apache OIDC relying party',
    'description: "Apache httpd with mod_auth_openidc, signing in with the Bloud account"',
    'category: productivity',
    `port: ${port}`,
    'healthCheck:',
    `  path: /embed/${APP}/health.txt`,
    '  interval: 1',
    '  timeout: 60',
    'sso:',
    '  strategy: native-oidc',
    '  callbackPath: /redirect_uri',
    '  providerName: Bloud',
    // Apache serves the app under /embed/<app>/ itself, like Miniflux with its BASE_URL.
    'routing:',
    '  stripPrefix: false',
    '',
  ].join('\n');
}

/**
 * The relying party's Apache config: only the modules it needs, everything in `dir`, the OIDC
 * settings an operator would write for a provider with discovery (PKCE S256, client_secret_basic).
 * The page is server-side includes that print what mod_auth_openidc established from the ID token.
 */
function apacheConf({ dir, port, publicUrl, secret }) {
  const docroot = join(dir, 'htdocs');
  const appDir = join(docroot, 'embed', APP);
  mkdirSync(appDir, { recursive: true });
  mkdirSync(join(dir, 'run'), { recursive: true });
  writeFileSync(join(appDir, 'health.txt'), 'ok\n');
  writeFileSync(join(appDir, 'index.html'), [
    '<!doctype html>',
    '<html><head><meta charset="utf-8"><title>Apache relying party</title></head><body>',
    '<h1>Signed in as <span id="user"><!--#echo var="OIDC_CLAIM_preferred_username" --></span></h1>',
    '<dl>',
    '<dt>REMOTE_USER</dt><dd id="remote-user"><!--#echo var="REMOTE_USER" --></dd>',
    '<dt>sub</dt><dd id="sub"><!--#echo var="OIDC_CLAIM_sub" --></dd>',
    '<dt>groups</dt><dd id="groups"><!--#echo var="OIDC_CLAIM_groups" --></dd>',
    '<dt>iss</dt><dd id="iss"><!--#echo var="OIDC_CLAIM_iss" --></dd>',
    '</dl></body></html>',
    '',
  ].join('\n'));
  const mods = {
    mpm_event_module: 'mod_mpm_event.so',
    authn_core_module: 'mod_authn_core.so',
    authz_core_module: 'mod_authz_core.so',
    authz_user_module: 'mod_authz_user.so',
    dir_module: 'mod_dir.so',
    headers_module: 'mod_headers.so',
    include_module: 'mod_include.so',
    auth_openidc_module: 'mod_auth_openidc.so',
  };
  const conf = [
    `ServerRoot "${dir}"`,
    `Listen 127.0.0.1:${port}`,
    'ServerName 127.0.0.1',
    // As a user other than root Apache keeps running as that user; naming it keeps Apache from
    // looking up its default uid -1. (As root, Apache refuses `User root`; CI runs the tests as
    // root and Apache's -X process then serves as root, as with any single-process debug run.)
    ...(process.getuid() === 0 ? [] : [`User #${process.getuid()}`, `Group #${process.getgid()}`]),
    `PidFile "${join(dir, 'run', 'apache2.pid')}"`,
    `DefaultRuntimeDir "${join(dir, 'run')}"`,
    `Mutex file:${join(dir, 'run')} default`,
    `ErrorLog "${join(dir, 'apache-error.log')}"`,
    'LogLevel warn auth_openidc:info',
    ...Object.entries(mods).map(([n, f]) => `LoadModule ${n} ${join(MODULES, f)}`),
    'StartServers 1',
    'ServerLimit 1',
    'ThreadsPerChild 16',
    'MaxRequestWorkers 16',
    `DocumentRoot "${docroot}"`,
    'DirectoryIndex index.html',
    '',
    `OIDCProviderMetadataURL ${publicUrl}/.well-known/openid-configuration`,
    `OIDCClientID ${CLIENT_ID}`,
    `OIDCClientSecret ${secret}`,
    `OIDCRedirectURI ${publicUrl}/embed/${APP}/redirect_uri`,
    `OIDCCryptoPassphrase ${randomBytes(24).toString('hex')}`,
    'OIDCProviderTokenEndpointAuth client_secret_basic',
    'OIDCPKCEMethod S256',
    'OIDCScope "openid profile"',
    'OIDCRemoteUserClaim preferred_username',
    // The proxy forwards the browser's host and scheme; without this Apache would compare the
    // redirect URI with its own loopback address.
    'OIDCXForwardedHeaders X-Forwarded-Host X-Forwarded-Port X-Forwarded-Proto',
    `OIDCCookiePath /embed/${APP}/`,
    // mod_auth_openidc starts a login only for requests whose Sec-Fetch-Dest is `document`
    // (anything else it takes for a script and answers 401). Bloud opens apps in the shell's
    // frame (`iframe`), and the shell's service worker forwards navigations under /embed/ with
    // fetch (`empty`), so an operator putting this module behind Bloud drops the header first.
    'RequestHeader unset Sec-Fetch-Dest early',
    'OIDCCookieSameSite On',
    '',
    `<Directory "${docroot}">`,
    '  Require all denied',
    '</Directory>',
    `<Location "/embed/${APP}/">`,
    '  AuthType openid-connect',
    '  Require valid-user',
    '  Options +Includes',
    '  SetOutputFilter INCLUDES',
    '  ForceType "text/html; charset=utf-8"',
    '</Location>',
    `<Location "/embed/${APP}/health.txt">`,
    '  AuthType None',
    '  Require all granted',
    '  ForceType text/plain',
    '</Location>',
    '',
  ].join('\n');
  const file = join(dir, 'apache2.conf');
  writeFileSync(file, conf);
  return file;
}

/**
 * Starts bloud-proxy and bloud-agent, registers the OIDC client, starts Apache and installs the
 * app. Returns { base, socket, dir, logs(), stop() }.
 */
export async function startRpSystem() {
  const bins = binaries();
  if (bins.missing.length) throw new Error(`${bins.missing.join(', ')} missing: run \`cargo build --workspace --bins\` first`);
  if (!existsSync(join(repo, 'web/dist/index.html'))) throw new Error('web/dist is not built: run `cd web && npm ci && npm run build`');
  const { proxy: proxyBin, agent: agentBin } = bins.bins;
  const dir = mkdtempSync(join(tmpdir(), 'bloud-oidc-rp-'));
  const routes = join(dir, 'routes');
  const data = join(dir, 'data');
  const log = join(dir, 'log');
  const catalog = join(dir, 'apps');
  for (const d of [routes, data, log, join(catalog, APP)]) mkdirSync(d, { recursive: true });
  const [web, admin, agentPort, appPort] = await freePorts(4);
  const base = `http://127.0.0.1:${web}`;
  const socket = join(dir, 'agent.sock');
  const baseRoutes = readFileSync(join(repo, 'config/routes/base.yml'), 'utf8');
  if (!baseRoutes.includes('http://127.0.0.1:3000')) {
    throw new Error('config/routes/base.yml no longer points host-agent at http://127.0.0.1:3000; update tests/browser/oidc-rp.mjs');
  }
  writeFileSync(join(routes, 'base.yml'), baseRoutes.replaceAll('http://127.0.0.1:3000', `http://127.0.0.1:${agentPort}`));
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
  writeFileSync(agentYaml, [
    `listen: 127.0.0.1:${agentPort}`,
    `socket: "${socket}"`,
    `appsDir: "${catalog}"`,
    `dataDir: "${data}"`,
    `routesDir: "${routes}"`,
    `proxyPidFile: "${pidFile}"`,
    `webDir: "${join(repo, 'web', 'dist')}"`,
    `publicUrl: "${base}"`,
    'rebuild:',
    '  mode: command',
    '  command: ["true"]',
    'queue:',
    '  batchWindow: 200ms',
    '',
  ].join('\n'));
  writeFileSync(join(catalog, APP, 'metadata.yaml'), metadataYaml(appPort));

  const procs = [];
  const sys = {
    base,
    socket,
    dir,
    logs: () => [...procs.map((p) => p.log), join(dir, 'apache-error.log')]
      .map((f) => `----- ${f} -----\n${existsSync(f) ? readFileSync(f, 'utf8').slice(-8000) : ''}`).join('\n'),
    api: (method, path, body) => socketJson(socket, method, path, body),
    async stop({ keep = false } = {}) {
      for (const p of [...procs].reverse()) await stopProc(p);
      if (!keep) rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    const proxy = launch('bloud-proxy', proxyBin, ['--config', join(dir, 'proxy.yml')], dir, log, { NO_COLOR: '1' });
    procs.push(proxy);
    await waitHttp(`${base}/ping`, { proc: proxy, also: () => existsSync(pidFile) });
    const agent = launch('bloud-agent', agentBin, ['serve', '--config', agentYaml], dir, log, { NO_COLOR: '1', RUST_LOG: 'info' });
    procs.push(agent);
    await waitHttp(`${base}/api/health`, { proc: agent });

    // The client, registered the way docs/sso.md tells an operator: the admin API on the socket.
    const reg = await sys.api('POST', '/api/oidc/clients', {
      client_id: CLIENT_ID,
      name: 'Apache (mod_auth_openidc)',
      app: APP,
      redirect_uris: [`${base}/embed/${APP}/redirect_uri`],
    });
    if (reg.status !== 201 || !reg.json?.client_secret) throw new Error(`registering the OIDC client: HTTP ${reg.status} ${reg.text}`);

    const conf = apacheConf({ dir, port: appPort, publicUrl: base, secret: reg.json.client_secret });
    const check = spawnSync(APACHE, ['-t', '-f', conf], { encoding: 'utf8', env: cleanEnv({}), timeout: 10_000 });
    if (check.status !== 0) throw new Error(`apache2 -t rejected the generated config:\n${check.stdout}${check.stderr}`);
    // -X: one process in the foreground, ended by SIGTERM like the others; no root needed.
    const apache = launch('apache2', APACHE, ['-X', '-f', conf], dir, log, {});
    procs.push(apache);
    await waitHttp(`http://127.0.0.1:${appPort}/embed/${APP}/health.txt`, { proc: apache });

    const inst = spawnSync(agentBin, ['install', APP, '--config', agentYaml], { encoding: 'utf8', timeout: 60_000, env: cleanEnv({ NO_COLOR: '1' }) });
    if (inst.status !== 0) throw new Error(`bloud-agent install ${APP} failed (${inst.status ?? inst.signal}):\n${inst.stdout}\n${inst.stderr}`);
    // Installed: the proxy now routes /embed/<app>/ behind Bloud's login, which answers a request
    // without a session (fetch is not a navigation: 401) instead of the agent's "not installed"
    // page.
    const started = Date.now();
    for (;;) {
      const r = await fetch(`${base}/embed/${APP}/`, { redirect: 'manual' });
      await r.arrayBuffer();
      if (r.status === 401) break;
      if (Date.now() - started > 30_000) throw new Error(`the proxy did not route /embed/${APP}/ within 30 s (last: HTTP ${r.status})`);
      await new Promise((res) => setTimeout(res, 100));
    }
  } catch (e) {
    const logs = sys.logs();
    await sys.stop({ keep: true });
    throw new Error(`${e.message}\n${logs}`);
  }
  return sys;
}
