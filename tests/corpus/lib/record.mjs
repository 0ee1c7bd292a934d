// Records what a browser page and everything in it asks the network for (page, frames,
// service worker, WebSockets, workers) and judges it against the corpus pass criteria.

/** Starts recording for one app page; returns the recorder (call stop() before judging). */
export function record(context, page) {
  const rec = { requests: [], sockets: [], workers: [], errors: [], stopped: false };
  const byReq = new Map();
  const kindOf = (req) => {
    if (req.serviceWorker()) return 'sw';
    let frame;
    try {
      frame = req.frame();
    } catch {
      return 'other';
    }
    if (frame.page() !== page) return 'other';
    return frame === page.mainFrame() ? 'shell' : 'app';
  };
  const onRequest = (req) => {
    if (rec.stopped) return;
    const kind = kindOf(req);
    if (kind === 'other') return;
    const entry = { kind, method: req.method(), url: req.url(), type: req.resourceType(), status: null, failure: null, fromSw: false };
    byReq.set(req, entry);
    rec.requests.push(entry);
  };
  const onFinished = async (req) => {
    const entry = byReq.get(req);
    if (!entry) return;
    const resp = await req.response().catch(() => null);
    if (resp) {
      entry.status = resp.status();
      entry.fromSw = resp.fromServiceWorker();
    }
  };
  const onFailed = (req) => {
    const entry = byReq.get(req);
    if (!entry) return;
    entry.failure = req.failure()?.errorText ?? 'failed';
    entry.afterStop = rec.stopped;
  };
  const onSocket = (ws) => {
    if (rec.stopped) return;
    const s = { url: ws.url(), error: null, frames: 0 };
    rec.sockets.push(s);
    ws.on('socketerror', (e) => { if (!rec.stopped) s.error = String(e); });
    ws.on('framereceived', () => { s.frames++; });
  };
  const onWorker = (w) => { if (!rec.stopped) rec.workers.push(w.url()); };
  const onPageError = (e) => { if (!rec.stopped) rec.errors.push(e.message); };
  context.on('request', onRequest);
  context.on('requestfinished', onFinished);
  context.on('requestfailed', onFailed);
  page.on('websocket', onSocket);
  page.on('worker', onWorker);
  page.on('pageerror', onPageError);
  rec.stop = () => {
    rec.stopped = true;
    context.off('request', onRequest);
    context.off('requestfinished', onFinished);
    context.off('requestfailed', onFailed);
  };
  return rec;
}

const SHELL_PREFIXES = ['/api/', '/assets/', '/sw.js', '/apps/', '/favicon', '/manifest', '/icons/'];

/**
 * The problems of one app run: same-origin requests outside /embed/<name>/ and failed requests,
 * each as a line of text (empty = pass). `origin` is the page's origin.
 */
export function judge(rec, app, origin) {
  const prefix = `/embed/${app.name}/`;
  const problems = [];
  const shellUrls = new Set(rec.requests.filter((r) => r.kind === 'shell').map((r) => r.url));
  const expected = app.expectedFailures ?? [];
  const appPath = (u) => (u.pathname.startsWith(prefix) ? u.pathname.slice(prefix.length - 1) : u.pathname);
  const isExpected = (u, status) => expected.some((x) => x.path.test(appPath(u)) && (x.status === undefined || x.status === status || (Array.isArray(x.status) && x.status.includes(status))));
  for (const r of rec.requests) {
    if (r.kind === 'shell') continue;
    let u;
    try {
      u = new URL(r.url);
    } catch {
      continue;
    }
    if (!/^(https?|wss?):$/.test(u.protocol)) continue;
    const same = u.origin === origin;
    // A frame request answered by the service worker did not reach the network as written: the
    // worker's own request (kind `sw`) is the one judged.
    const reachedNetwork = !(r.kind === 'app' && r.fromSw);
    // The worker also fetches for the shell page (its navigation and assets); those are the shell's.
    const shellFetch = r.kind === 'sw' && (shellUrls.has(r.url) || SHELL_PREFIXES.some((p) => u.pathname.startsWith(p)) || u.pathname === '/');
    if (shellFetch) continue;
    if (same && reachedNetwork && !u.pathname.startsWith(prefix) && u.pathname !== prefix.slice(0, -1)) {
      problems.push(`left the prefix: ${r.method} ${u.pathname}${u.search} (${r.type}, ${r.kind}${r.status ? `, ${r.status}` : ''})`);
    }
    if (r.failure && !r.afterStop && r.failure !== 'net::ERR_ABORTED') {
      problems.push(`failed: ${r.method} ${u.pathname}${u.search} (${r.failure})`);
    } else if (r.status >= 400 && !isExpected(u, r.status)) {
      problems.push(`HTTP ${r.status}: ${r.method} ${u.pathname}${u.search} (${r.type}, ${r.kind})`);
    }
  }
  for (const s of rec.sockets) {
    const u = new URL(s.url);
    const same = u.host === new URL(origin).host;
    if (same && !u.pathname.startsWith(prefix)) problems.push(`WebSocket left the prefix: ${u.pathname}${u.search}`);
    if (s.error) problems.push(`WebSocket error on ${u.pathname}: ${s.error}`);
  }
  for (const w of rec.workers) {
    let u;
    try {
      u = new URL(w);
    } catch {
      continue;
    }
    if (u.origin === origin && !u.pathname.startsWith(prefix)) problems.push(`worker left the prefix: ${u.pathname}`);
  }
  return [...new Set(problems)];
}
