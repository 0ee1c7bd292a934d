/// <reference lib="webworker" />
/**
 * Service worker glue: turns fetch events into `decide()` inputs and carries out the decision.
 * Built on its own into `dist/service-worker.js` (scope `/`).
 *
 * `respondWith` must be called while the event is dispatched, so the common case is decided
 * synchronously from memory; only after a restart (memory empty) is the decision made
 * asynchronously from IndexedDB, and a "network" outcome is then served with `fetch(request)`.
 */
import { Attribution } from './attribution';
import { type ClientFacts, type Decision, type RequestFacts, decide, isTopLevelNavigation } from './decide';
import { hasIntercepts, injectIntercepts } from './inject';
import { correctRedirectedFetch } from './location';
import { type Ack, type InterceptConfig, parseShellMessage, SW_VERSION } from './messages';
import { appFromEmbedPath, appFromReferrer, isUnderEmbed } from './paths';
import { IdbPersist, MemoryPersist, type Persist } from './persist';

declare const self: ServiceWorkerGlobalScope;

const origin = self.location.origin;

function logError(what: string, err: unknown): void {
  console.warn(`[bloud-sw] ${what}:`, err);
}

function makePersist(): Persist {
  try {
    if (typeof indexedDB !== 'undefined') return new IdbPersist(indexedDB);
  } catch (err) {
    logError('IndexedDB unavailable, attribution will not survive restarts', err);
  }
  return new MemoryPersist();
}

const attribution = new Attribution(makePersist(), logError);

/** Per clientId: what we know about it. Filled lazily; cleared only by restarts and pruning. */
const clientFacts = new Map<string, { app: string | null; shell: boolean }>();
let activeApp: string | null | undefined;
const settingsLoaded = new Set<string>();

const activeReady = refreshActive().catch((err: unknown) => {
  logError('loading the active app', err);
  if (activeApp === undefined) activeApp = null;
});

async function refreshActive(): Promise<void> {
  const rec = await attribution.getActive();
  let app = rec.app;
  if (app !== null && rec.shellClientId !== null) {
    // The app the shell shows only counts while that shell window exists.
    const shell = await self.clients.get(rec.shellClientId);
    if (!shell) app = null;
  }
  // A SET_ACTIVE_APP that arrived while this was loading is newer: keep it.
  if (activeApp === undefined) activeApp = app;
}

async function loadSettings(apps: Array<string | null>): Promise<void> {
  for (const app of apps) {
    if (app === null || settingsLoaded.has(app)) continue;
    await attribution.getSettings(app);
    settingsLoaded.add(app);
  }
}

async function resolveClient(clientId: string): Promise<{ app: string | null; shell: boolean }> {
  const cached = clientFacts.get(clientId);
  if (cached) return cached;
  let app = await attribution.clientApp(clientId);
  let shell = false;
  if (app === null) {
    const client = await self.clients.get(clientId);
    if (client) {
      const path = new URL(client.url).pathname;
      const fromUrl = appFromEmbedPath(path);
      if (fromUrl !== null) {
        app = fromUrl;
        await attribution.register(clientId, app);
      } else if (client.type === 'window' && client.frameType === 'top-level') {
        shell = true;
      }
    }
  }
  const facts = { app, shell };
  clientFacts.set(clientId, facts);
  return facts;
}

function requestFacts(request: Request): RequestFacts {
  return {
    url: request.url,
    method: request.method,
    mode: request.mode,
    destination: request.destination,
    referrer: request.referrer,
  };
}

function toClientFacts(c: { app: string | null; shell: boolean }): ClientFacts {
  return { clientApp: c.app, clientIsShell: c.shell, activeApp: activeApp ?? null };
}

const policy = { needsRewrite: (app: string) => attribution.needsRewriteCached(app) };

function candidateApps(req: RequestFacts, c: { app: string | null }): Array<string | null> {
  return [c.app, appFromReferrer(req.referrer, origin), activeApp ?? null, appFromEmbedPath(new URL(req.url).pathname)];
}

self.addEventListener('install', () => {
  void self.skipWaiting();
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      await self.clients.claim();
      const dropped = await pruneClosedClients();
      if (dropped > 0) console.info(`[bloud-sw] forgot ${dropped} closed client(s)`);
    })(),
  );
});

self.addEventListener('message', (event) => {
  const port = event.ports[0];
  const reply = (ack: Ack) => port?.postMessage(ack);
  const msg = parseShellMessage(event.data);
  if (msg === null) {
    reply({ ok: false, error: 'unknown message' });
    return;
  }
  const source = event.source as Client | null;
  event.waitUntil(
    (async () => {
      try {
        switch (msg.type) {
          case 'SET_ACTIVE_APP':
            activeApp = msg.appName;
            if (source) clientFacts.set(source.id, { app: null, shell: true });
            if (msg.appName !== null && msg.needsRewrite !== undefined) {
              await attribution.setSettings(msg.appName, { needsRewrite: msg.needsRewrite });
              settingsLoaded.add(msg.appName);
            }
            await attribution.setActive(msg.appName, source?.id ?? null);
            break;
          case 'SET_INTERCEPTS':
            await attribution.setSettings(msg.appName, { intercepts: msg.config });
            settingsLoaded.add(msg.appName);
            break;
          case 'GET_STATE':
            break;
        }
        reply({ ok: true, version: SW_VERSION, activeApp: activeApp ?? null });
      } catch (err) {
        logError(`handling ${msg.type}`, err);
        reply({ ok: false, error: String(err) });
      }
    })(),
  );
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  let url: URL;
  try {
    url = new URL(request.url);
  } catch {
    return;
  }
  // Fast exits that need no state: other origins, and an app's own assets and XHR.
  if (url.origin !== origin) return;
  if (isUnderEmbed(url.pathname) && request.mode !== 'navigate') return;

  const req = requestFacts(request);
  const known = clientFacts.get(event.clientId) ?? (event.clientId === '' ? { app: null, shell: false } : undefined);
  const syncReady =
    known !== undefined && activeApp !== undefined && candidateApps(req, known).every((a) => a === null || settingsLoaded.has(a));

  if (syncReady && known !== undefined) {
    const decision = decide(req, origin, toClientFacts(known), policy);
    if (!needsResponse(decision)) {
      afterNetworkDecision(event, decision);
      return;
    }
    event.respondWith(carryOut(event, decision));
    return;
  }

  event.respondWith(
    (async () => {
      await activeReady;
      const facts = event.clientId ? await resolveClient(event.clientId) : { app: null, shell: false };
      await loadSettings(candidateApps(req, facts));
      const decision = decide(req, origin, toClientFacts(facts), policy);
      if (!needsResponse(decision)) {
        afterNetworkDecision(event, decision);
        return fetch(request);
      }
      return carryOut(event, decision);
    })(),
  );
});

/** Whether the decision needs the worker to produce the response. */
function needsResponse(d: Decision): boolean {
  if (d.action === 'network') return false;
  if (d.action === 'embed-navigation') return hasIntercepts(currentIntercepts(d.app));
  return true;
}

function currentIntercepts(app: string): InterceptConfig | null {
  // Settings for the app were loaded before deciding (candidateApps covers the /embed/<app> path).
  return attribution.settingsCached(app)?.intercepts ?? null;
}

function afterNetworkDecision(event: FetchEvent, d: Decision): void {
  if (d.action === 'network' && d.registerResulting !== undefined && event.resultingClientId) {
    remember(event, event.resultingClientId, d.registerResulting);
  }
  // A top-level window is attributed by the URL it ends up at (`resolveClient`): the proxy
  // answers a signed-out navigation to /embed/<app>/ with a redirect to the shell's /login, and
  // that page, counted as the app's, would have its own scripts rewritten into the app.
  if (d.action === 'embed-navigation' && event.resultingClientId && !isTopLevelNavigation(requestFacts(event.request))) {
    remember(event, event.resultingClientId, d.app);
  }
}

/** Every navigation adds a client; closed ones are dropped now and then, not only on activation. */
const PRUNE_EVERY = 100;
let registrations = 0;

function remember(event: FetchEvent, clientId: string, app: string): void {
  clientFacts.set(clientId, { app, shell: false });
  event.waitUntil(attribution.register(clientId, app));
  registrations += 1;
  if (registrations % PRUNE_EVERY === 0) event.waitUntil(pruneClosedClients());
}

async function pruneClosedClients(): Promise<number> {
  const live = await self.clients.matchAll({ includeUncontrolled: true, type: 'all' });
  const ids = new Set(live.map((c) => c.id));
  for (const id of [...clientFacts.keys()]) if (!ids.has(id)) clientFacts.delete(id);
  return attribution.prune(ids);
}

async function carryOut(event: FetchEvent, d: Decision): Promise<Response> {
  switch (d.action) {
    case 'block-sw-script':
      return new Response('// service workers are disabled for embedded apps\n', {
        status: 200,
        headers: { 'content-type': 'application/javascript; charset=utf-8' },
      });
    case 'redirect':
      return Response.redirect(new URL(d.location, origin).href, d.status);
    case 'fetch':
      return fetchForApp(event.request, new URL(d.url, origin).href, d.app);
    case 'embed-navigation':
      afterNetworkDecision(event, d);
      return navigateWithIntercepts(event.request, d.app);
    case 'network':
      afterNetworkDecision(event, d);
      return fetch(event.request);
  }
}

const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);

/**
 * A new Response with the same status, headers and streamed body but no `url`: module scripts and
 * workers then keep their root-level URL as base, so their relative imports come back through
 * the worker (as upstream, which needed it for Actual's worker), without buffering the body.
 */
function isOpaque(resp: Response): boolean {
  return resp.type === 'opaque' || resp.type === 'opaqueredirect' || resp.type === 'error';
}

function detachUrl(resp: Response, method: string): Response {
  if (isOpaque(resp)) return resp;
  const body = NULL_BODY_STATUS.has(resp.status) || method === 'HEAD' ? null : resp.body;
  return new Response(body, { status: resp.status, statusText: resp.statusText, headers: resp.headers });
}

async function fetchForApp(request: Request, target: string, app: string): Promise<Response> {
  const init: RequestInit = {
    method: request.method,
    headers: request.headers,
    credentials: request.credentials,
    cache: request.cache === 'only-if-cached' ? 'default' : request.cache,
    mode: request.mode === 'navigate' ? 'same-origin' : request.mode,
    redirect: request.redirect === 'manual' ? 'follow' : request.redirect,
    referrer: request.referrer,
    referrerPolicy: request.referrerPolicy,
    integrity: request.integrity,
    signal: request.signal,
  };
  if (request.method !== 'GET' && request.method !== 'HEAD') init.body = await request.arrayBuffer();
  let resp = await fetch(target, init);
  const corrected = correctRedirectedFetch(target, resp.url, resp.redirected, app, origin);
  if (corrected !== null && (request.method === 'GET' || request.method === 'HEAD')) {
    // The app redirected to a root path (e.g. its login page); fetch that page from the app instead.
    resp = await fetch(corrected, init);
  }
  return detachUrl(resp, request.method);
}

async function navigateWithIntercepts(request: Request, app: string): Promise<Response> {
  // fetch(navigation request) keeps redirect mode "manual": a redirect comes back opaque and is
  // returned as-is, so the browser follows it (applying its cookies) and the next hop is seen here.
  const resp = await fetch(request);
  const config = currentIntercepts(app);
  const type = resp.headers.get('content-type') ?? '';
  if (!hasIntercepts(config) || isOpaque(resp) || resp.status !== 200 || !type.includes('text/html')) {
    return resp;
  }
  const html = await resp.text();
  const headers = new Headers(resp.headers);
  // The body is decoded and changed: the upstream lengths and encodings no longer apply.
  for (const h of ['content-length', 'content-encoding', 'content-md5', 'etag']) headers.delete(h);
  return new Response(injectIntercepts(html, config), { status: resp.status, statusText: resp.statusText, headers });
}
