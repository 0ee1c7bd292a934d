// The run-time URL shim (proxy/assets/embed-shim.js) in Debian's Chromium, against the real
// bloud-proxy binary with the route bloud-agent generates for any app. A tiny app written here
// records every path it gets (the proxy strips `/embed/shimapp`, so `/t/…` there means the
// browser asked for `/embed/shimapp/t/…`); its page calls every URL-taking API with
// root-absolute URLs built at run time, which no server-side rewrite can see.
//
// Two modes, in one Chromium:
// - `sw`: the page is opened as http://localhost:<port>/ (a secure context); the host page
//   registers the shell's real service worker (web/dist/service-worker.js), which controls the
//   app's frame. Nothing may be prefixed twice and the worker's own rules still apply.
// - `nosw`: opened as http://bloud.test:<port>/ (mapped to 127.0.0.1 with
//   --host-resolver-rules): plain http on a host name, where browsers run no service worker.
//   The shim alone keeps the app in its prefix.
//
// Needs `cargo build -p bloud-proxy --bins` and `cd web && npm run build` first. Skips, with
// the reason, only when /usr/bin/chromium is missing.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { listen, PNG, repo, startProxy } from './embed-harness.mjs';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const SW_FILE = join(repo, 'web', 'dist', 'service-worker.js');
const noChromium = !existsSync(CHROMIUM) && `${CHROMIUM} is missing (apt-get install -y chromium; scripts/ensure-deps test installs it)`;
const artifacts = fileURLToPath(new URL('./artifacts/', import.meta.url));
const APP = 'shimapp';
const PREFIX = `/embed/${APP}`;
const WHOLE_FILE_MS = 120_000;

let host;
let app;
let foreign;
let proxy;
let context;
let profile;
let failed = false;
const appSeen = []; // { method, url, body } as the app got them (prefix stripped)
const hostSeen = []; // paths that reached the host page's server (the catch-all route)
const foreignSeen = []; // paths that reached the other origin

const watchdog = setTimeout(() => {
  console.error(`shim.test.mjs: still running after ${WHOLE_FILE_MS} ms; stopping`);
  if (proxy) console.error(proxy.logs());
  try { proxy?.child.kill('SIGKILL'); } catch { /* gone */ }
  process.exit(1);
}, WHOLE_FILE_MS);
watchdog.unref();

/** The shell stand-in: registers the real service worker where the browser runs one. */
function hostHandler(swSource) {
  return (req, res) => {
    const path = req.url.split('?')[0];
    hostSeen.push(path);
    if (req.method === 'GET' && path === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(`<!doctype html>
<html><head><meta charset="utf-8"><title>Shim host</title>
<style>iframe{width:100%;height:400px;border:0}</style></head>
<body><header id="host-header">Host page</header>
<script>
(async () => {
  if ('serviceWorker' in navigator && window.isSecureContext) {
    await navigator.serviceWorker.register('/service-worker.js', { scope: '/' });
    await navigator.serviceWorker.ready;
    if (!navigator.serviceWorker.controller) {
      await new Promise((ok) => navigator.serviceWorker.addEventListener('controllerchange', ok, { once: true }));
    }
    // What the shell tells the worker when it shows an app (web/src/swClient.ts).
    await new Promise((ok) => {
      const ch = new MessageChannel();
      ch.port1.onmessage = ok;
      navigator.serviceWorker.controller.postMessage({ type: 'SET_ACTIVE_APP', appName: '${APP}', needsRewrite: true }, [ch.port2]);
    });
    document.body.dataset.sw = 'on';
  } else {
    document.body.dataset.sw = 'off';
  }
  const f = document.createElement('iframe');
  f.id = 'app-frame';
  f.src = '${PREFIX}/';
  document.body.append(f);
})();
</script></body></html>`);
      return;
    }
    if (req.method === 'GET' && path === '/service-worker.js') {
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' });
      res.end(swSource);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not the app\n');
  };
}

const appPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>Shim test app</title>
<script>
document.write('<img id="dw" src="/t/write.png">');
document.writeln('<img id="dwl" src="/t/writeln.png">');
</script>
</head><body><h1 id="app-title">Shim test app</h1></body></html>`;

const navPage = (path) => `<!doctype html><html><head><meta charset="utf-8"><title>nav</title></head>
<body><p id="here">${path}</p></body></html>`;

/** The app: answers everything under /t/ by its extension and records what it got. */
function appHandler(req, res) {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (c) => { body += c; });
  req.on('end', () => {
    appSeen.push({ method: req.method, url: req.url, body });
    const path = req.url.split('?')[0];
    const send = (type, text, status = 200) => {
      res.writeHead(status, { 'content-type': type });
      res.end(text);
    };
    if (path === '/') return send('text/html; charset=utf-8', appPage);
    if (path.endsWith('/sse')) return send('text/event-stream', 'data: sse-ok\n\n');
    if (path.endsWith('/worker.js')) return send('text/javascript', "postMessage('worker-ok');\n");
    if (path.endsWith('/shared.js')) return send('text/javascript', "onconnect = (e) => e.ports[0].postMessage('shared-ok');\n");
    if (path.endsWith('/script.js')) return send('text/javascript', "window.scriptRan = 'script-ok';\n");
    if (path.endsWith('.js')) return send('text/javascript', '// ok\n');
    if (path.endsWith('.png')) return send('image/png', PNG);
    if (path.endsWith('.css')) return send('text/css', 'p { color: rgb(1, 2, 3); }\n');
    if (path.endsWith('.html') || path.includes('/nav-')) return send('text/html; charset=utf-8', navPage(path));
    return send('text/plain', req.method === 'POST' ? `got ${body}` : `app ${path}`);
  });
}

/** A minimal WebSocket server side (RFC 6455 handshake, one text frame, then idle). */
function acceptWebSocket(req, socket) {
  appSeen.push({ method: 'WS', url: req.url, body: '' });
  const key = req.headers['sec-websocket-key'];
  const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
  const text = Buffer.from(`ws-ok ${req.url}`);
  socket.write(Buffer.concat([Buffer.from([0x81, text.length]), text]));
  socket.on('error', () => {});
  socket.on('data', (d) => {
    // A close frame from the browser: answer it and end.
    if ((d[0] & 0x0f) === 0x8) socket.end(Buffer.from([0x88, 0]));
  });
}

function foreignHandler(req, res) {
  foreignSeen.push(req.url.split('?')[0]);
  res.writeHead(200, { 'content-type': 'text/plain', 'access-control-allow-origin': '*' });
  res.end('foreign-ok');
}

before(async () => {
  if (noChromium) return;
  mkdirSync(artifacts, { recursive: true });
  if (!existsSync(SW_FILE)) throw new Error(`${SW_FILE} is missing: run \`cd web && npm ci && npm run build\``);
  host = await listen(hostHandler(readFileSync(SW_FILE)));
  app = await listen(appHandler);
  app.server.on('upgrade', acceptWebSocket);
  foreign = await listen(foreignHandler);
  proxy = await startProxy({ app: APP, appPort: app.port, hostPort: host.port, exclude: ['/openid-cb'] });
  const { chromium } = await import('playwright-core');
  profile = mkdtempSync(join(tmpdir(), 'bloud-shim-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1024, height: 700 },
    timeout: 20_000,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--host-resolver-rules=MAP bloud.test 127.0.0.1',
    ],
  });
}, { timeout: 40_000 });

after(async () => {
  clearTimeout(watchdog);
  if (failed && proxy) {
    console.error(proxy.logs());
    console.error(`----- app saw -----\n${appSeen.map((r) => `${r.method} ${r.url}`).join('\n')}`);
    console.error(`----- host saw -----\n${hostSeen.join('\n')}`);
  }
  await context?.close().catch((e) => console.error(`closing Chromium: ${e.message}`));
  await proxy?.stop();
  await app?.close();
  await host?.close();
  await foreign?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
}, { timeout: 15_000 });

function step(name, fn) {
  test(name, { skip: noChromium, timeout: 30_000 }, async () => {
    if (failed) throw new Error('not run: an earlier step failed (see its error)');
    try {
      await fn();
    } catch (e) {
      failed = true;
      for (const p of context?.pages() ?? []) {
        await p.screenshot({ path: join(artifacts, `shim-failed-${name.replace(/\W+/g, '-')}.png`) }).catch(() => {});
      }
      throw e;
    }
  });
}

/** Resolves once `check()` holds (the app's or host's record is filled by network events). */
async function until(what, check, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const appGot = (path, method) => appSeen.some((r) => r.url.split('?')[0] === path && (!method || r.method === method));

/** Every URL-taking API, called from the app's frame with root-absolute URLs under /t/<mode>/. */
async function exerciseApis({ m, foreignOrigin }) {
  const P = `/t/${m}/`;
  const out = {};
  const text = (r) => r.text();
  const loaded = (el) => new Promise((ok) => { el.onload = () => ok('load'); el.onerror = () => ok('error'); });

  out.fetchString = await fetch(`${P}fetch-string`).then(text);
  out.fetchUrl = await fetch(new URL(`${P}fetch-url`, location.origin)).then(text);
  out.fetchAbsolute = await fetch(`${location.origin}${P}fetch-absolute`).then(text);
  out.fetchRequest = await fetch(new Request(`${P}fetch-request`)).then(text);
  out.fetchRequestPost = await fetch(new Request(`${P}fetch-request-post`, { method: 'POST', body: 'request-body' })).then(text);
  out.fetchInitPost = await fetch(`${P}fetch-init-post`, { method: 'POST', body: 'init-body' }).then(text);
  out.fetchRelative = await fetch(`t/${m}/fetch-relative`).then(text);
  out.fetchAlready = await fetch(`/embed/shimapp${P}fetch-already`).then(text);
  out.fetchData = await fetch('data:text/plain,data-ok').then(text);
  out.fetchForeign = await fetch(`${foreignOrigin}${P}fetch-foreign`).then(text);
  out.fetchExcluded = await fetch(`/openid-cb?m=${m}`).then((r) => r.status);
  out.fetchAuthentik = await fetch(`/outpost.goauthentik.io/${m}`).then((r) => r.status);
  out.fetchOtherApp = await fetch(`/embed/otherapp${P}x`).then((r) => r.status);
  out.fetchPrefixLookalike = await fetch(`/embed/shimapplet${P}x`).then((r) => r.status);

  out.xhr = await new Promise((ok, no) => {
    const x = new XMLHttpRequest();
    x.open('POST', `${P}xhr`);
    x.onload = () => ok(x.responseText);
    x.onerror = () => no(new Error('xhr failed'));
    x.send('xhr-body');
  });
  const ws = (url) => new Promise((ok, no) => {
    const w = new WebSocket(url);
    w.onmessage = (e) => { ok(e.data); w.close(); };
    w.onerror = () => no(new Error(`websocket ${url} failed`));
  });
  out.ws = await ws(`${P}ws`);
  out.wsAbsolute = await ws(`ws://${location.host}${P}ws-absolute`);
  const socket = new WebSocket(`${P}ws-instance`);
  out.wsInstance = socket instanceof WebSocket && WebSocket.OPEN === 1 && socket.url.endsWith(`/embed/shimapp${P}ws-instance`);
  socket.onopen = () => socket.close();
  out.sse = await new Promise((ok, no) => {
    const es = new EventSource(`${P}sse`);
    es.onmessage = (e) => { ok(e.data); es.close(); };
    es.onerror = () => { es.close(); no(new Error('EventSource failed')); };
  });
  out.beacon = navigator.sendBeacon(`${P}beacon`, 'beacon-body');
  out.worker = await new Promise((ok, no) => {
    const w = new Worker(`${P}worker.js`);
    w.onmessage = (e) => { ok(e.data); w.terminate(); };
    w.onerror = (e) => no(new Error(`worker: ${e.message}`));
  });
  out.sharedWorker = await new Promise((ok, no) => {
    const s = new SharedWorker(`${P}shared.js`);
    s.port.onmessage = (e) => ok(e.data);
    s.onerror = () => no(new Error('shared worker failed'));
    s.port.start();
  });

  const start = location.href;
  history.pushState({ n: 1 }, '', `${P}pushed`);
  out.pushState = location.pathname;
  history.replaceState(null, '', `${P}replaced?q=1`);
  out.replaceState = location.pathname + location.search;
  history.replaceState(null, '', start);

  const popup = window.open(`${P}opened.html`, '_blank');
  // With COOP the opener may get null back; the app's record shows where the popup went.
  void popup;

  const script = document.createElement('script');
  script.src = `${P}script.js`;
  const scriptDone = loaded(script);
  document.head.append(script);
  out.script = await scriptDone;
  out.scriptRan = window.scriptRan;
  const img = new Image();
  img.src = `${P}img.png`;
  out.img = await loaded(img);
  const link = document.createElement('link');
  link.rel = 'stylesheet';
  link.href = `${P}style.css`;
  const linkDone = loaded(link);
  document.head.append(link);
  out.link = await linkDone;
  const frame = document.createElement('iframe');
  frame.src = `${P}frame.html`;
  const frameDone = loaded(frame);
  document.body.append(frame);
  out.iframe = await frameDone;
  out.iframePath = frame.contentWindow.location.pathname;

  const el = (tag) => document.createElement(tag);
  const attr = (e, name) => e.getAttribute(name);
  const a = el('a'); a.href = `${P}a`; out.aHref = attr(a, 'href');
  const area = el('area'); area.href = `${P}area`; out.areaHref = attr(area, 'href');
  const form = el('form'); form.action = `${P}form`; out.formAction = attr(form, 'action');
  const video = el('video'); video.src = `${P}video.mp4`; video.poster = `${P}poster.png`;
  out.videoSrc = attr(video, 'src'); out.videoPoster = attr(video, 'poster');
  const audio = el('audio'); audio.src = `${P}audio.mp3`; out.audioSrc = attr(audio, 'src');
  const source = el('source'); source.src = `${P}source.mp4`; out.sourceSrc = attr(source, 'src');
  const object = el('object'); object.data = `${P}object.png`; out.objectData = attr(object, 'data');
  const embed = el('embed'); embed.src = `${P}embed.png`; out.embedSrc = attr(embed, 'src');
  const button = el('button'); button.formAction = `${P}button`; out.buttonFormAction = attr(button, 'formaction');
  const input = el('input'); input.formAction = `${P}input`; out.inputFormAction = attr(input, 'formaction');
  const srcset = el('img'); srcset.srcset = `${P}s1.png 1x, ${P}s2.png 2x`; out.srcset = attr(srcset, 'srcset');

  const setAttr = {};
  for (const [tag, name] of [['script', 'src'], ['img', 'src'], ['link', 'href'], ['a', 'href'], ['form', 'action'],
    ['iframe', 'src'], ['video', 'src'], ['video', 'poster'], ['audio', 'src'], ['source', 'src'], ['object', 'data'],
    ['embed', 'src'], ['button', 'formaction']]) {
    const e = el(tag);
    e.setAttribute(name, `${P}set-${tag}-${name}`);
    setAttr[`${tag}.${name}`] = attr(e, name);
  }
  const imgSet = el('img');
  imgSet.setAttribute('srcset', `${P}set1.png 1x, ${P}set2.png 2x`);
  setAttr['img.srcset'] = attr(imgSet, 'srcset');
  const div = el('div');
  div.setAttribute('data', `${P}not-a-url-here`);
  setAttr['div.data'] = attr(div, 'data');
  out.setAttribute = setAttr;

  const untouched = {};
  for (const value of ['relative/x', '../up', '//other.example/x', 'https://example.com/x', `/embed/shimapp${P}already`,
    '/openid-cb', '/openid-cb/more', '/embed/otherapp/x', '/outpost.goauthentik.io/start', 'data:,x', 'javascript:void 0', '#frag', '?q=1']) {
    const e = el('a');
    e.href = value;
    untouched[value] = attr(e, 'href');
  }
  out.untouched = untouched;

  const holder = el('div');
  holder.innerHTML = `<img src="${P}inner.png"><a href='${P}inner-a'>x</a><form action=${P}inner-form></form><img srcset="${P}inner-1.png 1x">`;
  out.innerHTML = [...holder.children].map((c) => c.getAttribute('src') ?? c.getAttribute('href') ?? c.getAttribute('action') ?? c.getAttribute('srcset'));
  document.body.append(holder);
  const outer = el('div');
  document.body.append(outer);
  outer.outerHTML = `<img id="outer" src="${P}outer.png">`;
  out.outerHTML = attr(document.getElementById('outer'), 'src');
  document.body.insertAdjacentHTML('beforeend', `<img id="adjacent" src="${P}adjacent.png">`);
  out.insertAdjacentHTML = attr(document.getElementById('adjacent'), 'src');
  const frag = document.createRange().createContextualFragment(`<img src="${P}fragment.png">`);
  out.createContextualFragment = attr(frag.firstChild, 'src');
  document.body.append(frag);
  out.documentWrite = attr(document.getElementById('dw'), 'src');
  out.documentWriteln = attr(document.getElementById('dwl'), 'src');

  // What the page itself asked for (before any service worker): every same-origin URL.
  out.resources = performance.getEntriesByType('resource').map((e) => e.name)
    .filter((u) => new URL(u).origin === location.origin).map((u) => new URL(u).pathname);
  return out;
}

for (const mode of [
  { key: 'sw', origin: (port) => `http://localhost:${port}`, sw: true },
  { key: 'nosw', origin: (port) => `http://bloud.test:${port}`, sw: false },
]) {
  const m = mode.key;
  const P = `/t/${m}/`;
  const E = `${PREFIX}${P}`;
  let page;
  let origin;

  const frame = () => {
    const f = page.frames().find((fr) => fr.parentFrame() === page.mainFrame());
    assert.ok(f, 'the app frame');
    return f;
  };

  step(`[${m}] the app's frame loads with the shim first${mode.sw ? ', controlled by the service worker' : ', no service worker'}`, async () => {
    origin = mode.origin(new URL(proxy.base).port);
    page = await context.newPage();
    page.setDefaultTimeout(10_000);
    page.on('pageerror', (e) => console.error(`[page error ${m}] ${e.message}`));
    await page.goto(`${origin}/`);
    await page.locator('#app-frame').waitFor();
    await frame().waitForURL(`${origin}${PREFIX}/`);
    await frame().locator('#app-title').waitFor();
    const state = await frame().evaluate(() => ({
      shim: window.__bloudShim,
      first: document.head.firstElementChild.outerHTML,
      secure: window.isSecureContext,
      controlled: navigator.serviceWorker ? navigator.serviceWorker.controller !== null : null,
    }));
    assert.equal(state.shim, PREFIX, 'the shim ran with the route prefix');
    assert.match(state.first, /^<script src="\/embed\/shimapp\/__bloud__\/shim\.[0-9a-f]{10}\.js" data-prefix="\/embed\/shimapp" data-exclude="\[&quot;\/openid-cb&quot;\]"><\/script>$/);
    assert.equal(await page.evaluate(() => document.body.dataset.sw), mode.sw ? 'on' : 'off');
    if (mode.sw) {
      assert.equal(state.controlled, true, 'the service worker controls the app frame');
    } else {
      assert.equal(state.secure, false, 'plain http on a host name is not a secure context');
      assert.equal(state.controlled, null, 'no service worker API at all');
    }
  });

  step(`[${m}] every URL API moves root URLs under ${PREFIX}/, once, and leaves the rest alone`, async () => {
    const foreignOrigin = `http://127.0.0.1:${foreign.port}`;
    const out = await frame().evaluate(exerciseApis, { m, foreignOrigin });

    // Answers that came from the app prove the request reached /embed/shimapp/…
    assert.equal(out.fetchString, `app ${P}fetch-string`);
    assert.equal(out.fetchUrl, `app ${P}fetch-url`);
    assert.equal(out.fetchAbsolute, `app ${P}fetch-absolute`);
    assert.equal(out.fetchRequest, `app ${P}fetch-request`);
    assert.equal(out.fetchRequestPost, 'got request-body', 'a POST Request keeps its body');
    assert.equal(out.fetchInitPost, 'got init-body');
    assert.equal(out.fetchRelative, `app ${P}fetch-relative`);
    assert.equal(out.fetchAlready, `app ${P}fetch-already`);
    assert.equal(out.fetchData, 'data-ok');
    assert.equal(out.fetchForeign, 'foreign-ok');
    assert.equal(out.xhr, 'got xhr-body');
    assert.equal(out.ws, `ws-ok ${P}ws`);
    assert.equal(out.wsAbsolute, `ws-ok ${P}ws-absolute`);
    assert.equal(out.wsInstance, true, 'instanceof and WebSocket.OPEN still work');
    assert.equal(out.sse, 'sse-ok');
    assert.equal(out.beacon, true);
    assert.equal(out.worker, 'worker-ok');
    assert.equal(out.sharedWorker, 'shared-ok');
    assert.equal(out.pushState, `${E}pushed`);
    assert.equal(out.replaceState, `${E}replaced?q=1`);
    assert.equal(out.script, 'load');
    assert.equal(out.scriptRan, 'script-ok');
    assert.equal(out.img, 'load');
    assert.equal(out.link, 'load');
    assert.equal(out.iframe, 'load');
    assert.equal(out.iframePath, `${E}frame.html`);

    // Excluded paths, Authentik's, another app's and a look-alike prefix are not the app's.
    assert.equal(out.fetchExcluded, 404, '/openid-cb went to the root (the host page server)');
    assert.equal(out.fetchAuthentik, 404);
    assert.equal(out.fetchOtherApp, 404);
    assert.equal(out.fetchPrefixLookalike, 404);
    assert.ok(hostSeen.includes('/openid-cb'), 'the excluded path reached the root');
    assert.ok(hostSeen.includes(`/outpost.goauthentik.io/${m}`), "Authentik's path reached the root");
    assert.ok(hostSeen.includes(`/embed/otherapp${P}x`), "another app's path stayed");
    assert.ok(hostSeen.includes(`/embed/shimapplet${P}x`), '/embed/shimapplet is not under /embed/shimapp');
    assert.ok(foreignSeen.includes(`${P}fetch-foreign`), 'the other origin got its own path');

    // Properties and setAttribute: the DOM holds the prefixed URL.
    for (const [key, name] of [['aHref', 'a'], ['areaHref', 'area'], ['formAction', 'form'], ['videoSrc', 'video.mp4'],
      ['videoPoster', 'poster.png'], ['audioSrc', 'audio.mp3'], ['sourceSrc', 'source.mp4'], ['objectData', 'object.png'],
      ['embedSrc', 'embed.png'], ['buttonFormAction', 'button'], ['inputFormAction', 'input']]) {
      assert.equal(out[key], `${E}${name}`, key);
    }
    assert.equal(out.srcset, `${E}s1.png 1x, ${E}s2.png 2x`);
    for (const [key, value] of Object.entries(out.setAttribute)) {
      if (key === 'div.data') assert.equal(value, `${P}not-a-url-here`, 'data on a div is not a URL');
      else if (key === 'img.srcset') assert.equal(value, `${E}set1.png 1x, ${E}set2.png 2x`);
      else assert.equal(value, `${E}set-${key.replace('.', '-')}`, `setAttribute ${key}`);
    }
    for (const [value, got] of Object.entries(out.untouched)) assert.equal(got, value, `${value} stays as written`);

    // HTML strings.
    assert.deepEqual(out.innerHTML, [`${E}inner.png`, `${E}inner-a`, `${E}inner-form`, `${E}inner-1.png 1x`]);
    assert.equal(out.outerHTML, `${E}outer.png`);
    assert.equal(out.insertAdjacentHTML, `${E}adjacent.png`);
    assert.equal(out.createContextualFragment, `${E}fragment.png`);
    assert.equal(out.documentWrite, `${PREFIX}/t/write.png`);
    assert.equal(out.documentWriteln, `${PREFIX}/t/writeln.png`);

    // What reached the app: every one of them, once, never double-prefixed.
    const wanted = ['fetch-string', 'fetch-url', 'fetch-absolute', 'fetch-request', 'fetch-relative', 'fetch-already',
      'ws', 'ws-absolute', 'sse', 'worker.js', 'shared.js', 'opened.html', 'script.js', 'img.png', 'style.css', 'frame.html',
      'inner.png', 'outer.png', 'adjacent.png', 'fragment.png'].map((n) => `${P}${n}`);
    await until(`the app to get ${wanted.join(', ')}`, () => wanted.every((w) => appGot(w)));
    await until('the beacon', () => appGot(`${P}beacon`, 'POST'));
    assert.equal(appSeen.find((r) => r.url === `${P}beacon`).body, 'beacon-body');
    assert.equal(appSeen.find((r) => r.url === `${P}fetch-request-post`).method, 'POST');
    assert.deepEqual(appSeen.filter((r) => r.url.startsWith('/embed/')).map((r) => r.url), [], 'nothing was prefixed twice');
    assert.deepEqual(hostSeen.filter((p) => p.startsWith(P)), [], `no ${P} request left the prefix`);

    // The page's own record (before any service worker): same-origin requests are the shim's
    // path, the app's, or the ones meant to stay at the root.
    const outside = out.resources.filter((p) => !p.startsWith(`${PREFIX}/`));
    assert.deepEqual(outside.sort(), [`/embed/otherapp${P}x`, `/embed/shimapplet${P}x`, '/openid-cb', `/outpost.goauthentik.io/${m}`].sort());
    assert.ok(out.resources.some((p) => /^\/embed\/shimapp\/__bloud__\/shim\.[0-9a-f]{10}\.js$/.test(p)), 'the shim itself came from under the prefix');

    for (const p of context.pages()) if (p !== page && p.url().includes('/opened.html')) await p.close();
    await page.screenshot({ path: join(artifacts, `shim-${m}-apis.png`) });
  });

  step(`[${m}] navigations by location.href/assign/replace stay under ${PREFIX}/`, async () => {
    for (const [how, name] of [['href', 'nav-href'], ['assign', 'nav-assign'], ['replace', 'nav-replace']]) {
      await frame().evaluate(({ how, url }) => {
        if (how === 'href') location.href = url;
        else location[how](url);
      }, { how, url: `${P}${name}` });
      await frame().waitForURL(`${origin}${E}${name}`);
      assert.equal(await frame().locator('#here').textContent(), `${P}${name}`);
    }
    assert.equal(page.url(), `${origin}/`, 'the top page never moved');
    assert.deepEqual(hostSeen.filter((p) => p.startsWith(P)), [], 'no navigation reached the root');
  });

  step(`[${m}] a URL the shim cannot see (CSS set from script) ${mode.sw ? 'is caught by the service worker' : 'escapes: the documented limit'}`, async () => {
    await frame().evaluate((url) => { document.body.style.backgroundImage = `url(${url})`; }, `${P}css-from-js.png`);
    if (mode.sw) {
      // The worker's own rule: a root-level request of a client it knows to be the app's.
      await until('the worker to fetch it from the app', () => appGot(`${P}css-from-js.png`));
      assert.ok(!hostSeen.includes(`${P}css-from-js.png`));
    } else {
      await until('the request at the root', () => hostSeen.includes(`${P}css-from-js.png`));
      assert.ok(!appGot(`${P}css-from-js.png`));
    }
  });
}
