/**
 * The worker glue (src/sw/worker.ts) in a simulated service worker global: events in, responses
 * and network fetches out. A "restart" is a fresh import of the module over the same IndexedDB.
 */
import { IDBFactory } from 'fake-indexeddb';
import { afterEach, describe, expect, it, vi } from 'vitest';

const O = 'http://bloud.local';

interface FakeClient {
  id: string;
  url: string;
  type: 'window' | 'worker';
  frameType: 'top-level' | 'nested' | 'none';
}

type Listener = (ev: unknown) => void;

class FakeWorkerScope {
  readonly listeners = new Map<string, Listener[]>();
  readonly network: Array<{ url: string; init?: RequestInit }> = [];
  readonly live = new Map<string, FakeClient>();
  readonly location = new URL(O + '/service-worker.js');
  readonly clients = {
    get: async (id: string) => this.live.get(id),
    matchAll: async () => [...this.live.values()],
    claim: async () => undefined,
  };
  skipWaiting = async () => undefined;
  addEventListener(type: string, fn: Listener) {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), fn]);
  }

  /** The network behind the worker: the app answers under /embed/<app>/, the shell elsewhere. */
  fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    this.network.push({ url, init });
    const path = new URL(url, O).pathname;
    const m = /^\/embed\/([^/]+)\//.exec(path);
    if (m) return new Response(`app ${m[1]} ${path}`, { headers: { 'content-type': 'text/html' } });
    return new Response('<!doctype html><title>shell</title>', { headers: { 'content-type': 'text/html' } });
  };

  /** Dispatch a fetch event; returns the response the worker chose, or 'network' when it let it pass. */
  async dispatchFetch(req: { url: string; mode?: RequestMode; destination?: string; referrer?: string; method?: string }, clientId = '', resultingClientId = ''): Promise<string | 'network'> {
    let responded: Promise<Response> | null = null;
    const pending: Promise<unknown>[] = [];
    const request = {
      url: req.url.startsWith('http') ? req.url : O + req.url,
      method: req.method ?? 'GET',
      mode: req.mode ?? 'cors',
      destination: req.destination ?? '',
      referrer: req.referrer ?? '',
      headers: new Headers(),
      credentials: 'same-origin',
      cache: 'default',
      redirect: req.mode === 'navigate' ? 'manual' : 'follow',
      referrerPolicy: '',
      integrity: '',
      signal: new AbortController().signal,
      arrayBuffer: async () => new ArrayBuffer(0),
    };
    const event = {
      request,
      clientId,
      resultingClientId,
      respondWith: (p: Promise<Response>) => {
        responded = p;
      },
      waitUntil: (p: Promise<unknown>) => pending.push(p),
    };
    for (const fn of this.listeners.get('fetch') ?? []) fn(event);
    await Promise.all(pending);
    if (responded === null) return 'network';
    const resp: Response = await responded;
    await Promise.all(pending);
    if (resp.status >= 300 && resp.status < 400) return `redirect ${resp.status} ${resp.headers.get('location')}`;
    return resp.text();
  }

  async message(data: unknown, sourceId: string): Promise<unknown> {
    const pending: Promise<unknown>[] = [];
    let reply: unknown;
    const event = {
      data,
      source: { id: sourceId },
      ports: [{ postMessage: (m: unknown) => (reply = m) }],
      waitUntil: (p: Promise<unknown>) => pending.push(p),
    };
    for (const fn of this.listeners.get('message') ?? []) fn(event);
    await Promise.all(pending);
    return reply;
  }
}

/** Start the worker module in a new simulated global (a worker start or restart). */
async function bootWorker(db: IDBFactory, live: FakeClient[] = []): Promise<FakeWorkerScope> {
  const scope = new FakeWorkerScope();
  for (const c of live) scope.live.set(c.id, c);
  vi.resetModules();
  vi.stubGlobal('self', scope);
  vi.stubGlobal('indexedDB', db);
  vi.stubGlobal('fetch', scope.fetch);
  await import('../src/sw/worker');
  return scope;
}

afterEach(() => {
  vi.unstubAllGlobals();
});

const shell: FakeClient = { id: 'shell', url: O + '/apps/radarr/', type: 'window', frameType: 'top-level' };

describe('service worker glue', () => {
  it('leaves the shell alone and rewrites an app page’s root-level API call', async () => {
    const sw = await bootWorker(new IDBFactory(), [shell]);
    expect(await sw.message({ type: 'SET_ACTIVE_APP', appName: 'radarr', needsRewrite: true }, 'shell')).toMatchObject({ ok: true, activeApp: 'radarr' });
    expect(await sw.dispatchFetch({ url: '/api/apps' }, 'shell')).toBe('network');

    // The iframe navigation registers the new document as Radarr's.
    expect(await sw.dispatchFetch({ url: '/embed/radarr/', mode: 'navigate', destination: 'iframe' }, '', 'frame-1')).toBe('network');
    sw.live.set('frame-1', { id: 'frame-1', url: O + '/embed/radarr/', type: 'window', frameType: 'nested' });
    expect(await sw.dispatchFetch({ url: '/api/v3/system/status' }, 'frame-1')).toBe('app radarr /embed/radarr/api/v3/system/status');
    expect(sw.network.at(-1)?.url).toBe(O + '/embed/radarr/api/v3/system/status');
    expect(await sw.dispatchFetch({ url: '/embed/radarr/app.js' }, 'frame-1')).toBe('network');
    expect(await sw.dispatchFetch({ url: '/sw.js' }, 'frame-1')).toContain('service workers are disabled');
  });

  it('after a restart, a page at a root URL is still attributed to its app (IndexedDB)', async () => {
    const db = new IDBFactory();
    const first = await bootWorker(db, [shell]);
    await first.message({ type: 'SET_ACTIVE_APP', appName: 'actual-budget' }, 'shell');
    // Actual's OAuth callback page lives at /openid-cb: only the worker's record ties it to the app.
    // Goes to the network as is (served with fetch(request) while settings load): never redirected.
    expect(
      await first.dispatchFetch({ url: '/openid-cb?code=1', mode: 'navigate', destination: 'iframe', referrer: O + '/embed/actual-budget/' }, '', 'cb-page'),
    ).not.toMatch(/^redirect/);
    expect(first.network.at(-1)?.url).toBe(O + '/openid-cb?code=1');
    await first.message({ type: 'SET_ACTIVE_APP', appName: null }, 'shell');

    const callbackPage: FakeClient = { id: 'cb-page', url: O + '/openid-cb?code=1', type: 'window', frameType: 'nested' };
    const second = await bootWorker(db, [shell, callbackPage]);
    expect(await second.dispatchFetch({ url: '/static/main.js', referrer: O + '/openid-cb?code=1' }, 'cb-page')).toBe(
      'app actual-budget /embed/actual-budget/static/main.js',
    );
  });

  it('without the record, the same request after a restart is not rewritten', async () => {
    const callbackPage: FakeClient = { id: 'cb-page', url: O + '/openid-cb?code=1', type: 'window', frameType: 'nested' };
    const sw = await bootWorker(new IDBFactory(), [shell, callbackPage]);
    // Slow path (nothing in memory) serves passthrough with fetch(request): the shell's answer.
    expect(await sw.dispatchFetch({ url: '/static/main.js', referrer: O + '/openid-cb?code=1' }, 'cb-page')).toContain('<title>shell</title>');
  });

  it('a signed-out visit to /embed/<app>/ that the proxy sends to the login loads the shell, not the app', async () => {
    const sw = await bootWorker(new IDBFactory(), [shell]);
    await sw.message({ type: 'SET_ACTIVE_APP', appName: 'radarr', needsRewrite: true }, 'shell');
    expect(await sw.dispatchFetch({ url: '/embed/radarr/', mode: 'navigate', destination: 'document' }, '', 'tab-2')).toBe('network');
    // The proxy answered 302 /login?next=/embed/radarr/: the tab's document is the shell's.
    sw.live.set('tab-2', { id: 'tab-2', url: O + '/login?next=%2Fembed%2Fradarr%2F', type: 'window', frameType: 'top-level' });
    expect(await sw.dispatchFetch({ url: '/assets/index.js', destination: 'script' }, 'tab-2')).toContain('<title>shell</title>');
    expect(sw.network.at(-1)?.url).toBe(O + '/assets/index.js');
    // Signed in, the same visit ends at the app, which is then the tab's.
    expect(await sw.dispatchFetch({ url: '/embed/radarr/', mode: 'navigate', destination: 'document' }, '', 'tab-3')).toBe('network');
    sw.live.set('tab-3', { id: 'tab-3', url: O + '/embed/radarr/', type: 'window', frameType: 'top-level' });
    expect(await sw.dispatchFetch({ url: '/api/v3/system/status' }, 'tab-3')).toBe('app radarr /embed/radarr/api/v3/system/status');
  });

  it('redirects a root-level iframe navigation into the app and keeps the method with 307', async () => {
    const sw = await bootWorker(new IDBFactory(), [shell]);
    await sw.message({ type: 'SET_ACTIVE_APP', appName: 'qbittorrent' }, 'shell');
    expect(await sw.dispatchFetch({ url: '/login?x=1', mode: 'navigate', destination: 'iframe' })).toBe(`redirect 302 ${O}/embed/qbittorrent/login?x=1`);
    expect(await sw.dispatchFetch({ url: '/api/v2/auth/login', mode: 'navigate', destination: 'iframe', method: 'POST' })).toBe(
      `redirect 307 ${O}/embed/qbittorrent/api/v2/auth/login`,
    );
    expect(await sw.dispatchFetch({ url: '/if/flow/default-authentication-flow/', mode: 'navigate', destination: 'iframe' })).toBe('network');
  });

  it('injects intercepts into an app page and remembers them across a restart', async () => {
    const db = new IDBFactory();
    const first = await bootWorker(db, [shell]);
    const config = { localStorage: { intercepts: [{ key: 'server-url', value: O + '/embed/budget' }] } };
    expect(await first.message({ type: 'SET_INTERCEPTS', appName: 'budget', config }, 'shell')).toMatchObject({ ok: true });
    const second = await bootWorker(db, [shell]);
    const html = await second.dispatchFetch({ url: '/embed/budget/', mode: 'navigate', destination: 'iframe' }, '', 'b1');
    expect(html).toContain('<meta name="bloud-intercept-config"');
    expect(html).toContain('app budget /embed/budget/');
  });
});
