import { describe, expect, it } from 'vitest';
import { type ClientFacts, type Decision, type RequestFacts, decide } from '../src/sw/decide';

const O = 'http://bloud.local';

type Row = {
  name: string;
  req: Partial<RequestFacts> & { url: string };
  client?: Partial<ClientFacts>;
  noRewrite?: string[];
  absent?: string[];
  want: Partial<Decision> & { action: Decision['action'] };
};

const fetchReq = (url: string, extra: Partial<RequestFacts> = {}): Row['req'] => ({
  url: url.startsWith('http') ? url : O + url,
  mode: 'cors',
  destination: '',
  ...extra,
});
const iframeNav = (url: string, extra: Partial<RequestFacts> = {}): Row['req'] =>
  fetchReq(url, { mode: 'navigate', destination: 'iframe', ...extra });
const topNav = (url: string, extra: Partial<RequestFacts> = {}): Row['req'] =>
  fetchReq(url, { mode: 'navigate', destination: 'document', ...extra });

const rows: Row[] = [
  // Never touched
  { name: 'cross-origin', req: fetchReq('https://cdn.example.com/x.js'), client: { clientApp: 'radarr' }, want: { action: 'network', reason: 'cross-origin' } },
  { name: 'the shell calling its API', req: fetchReq('/api/apps'), client: { clientIsShell: true, activeApp: 'radarr' }, want: { action: 'network', reason: 'shell' } },
  { name: 'the shell loading a root asset while an app is shown', req: fetchReq('/favicon.svg', { referrer: O + '/apps/radarr/' }), client: { clientIsShell: true, activeApp: 'radarr' }, want: { action: 'network', reason: 'shell' } },
  { name: 'user opens the catalog in the tab', req: topNav('/catalog'), client: { activeApp: 'radarr' }, want: { action: 'network', reason: 'shell' } },
  { name: 'an app sends the whole tab to its root path', req: topNav('/control/login?x=1', { referrer: O + '/embed/adguard-home/' }), want: { action: 'redirect', location: '/apps/adguard-home/control/login?x=1', status: 302 } },
  { name: 'an app sends the whole tab to Authentik', req: topNav('/application/o/authorize/', { referrer: O + '/embed/actual-budget/' }), want: { action: 'network', reason: 'shell' } },
  { name: 'an app sends the whole tab to a shell page', req: topNav('/catalog', { referrer: O + '/embed/radarr/' }), want: { action: 'network', reason: 'shell' } },
  { name: 'whole-tab navigation reported with the shell as client', req: topNav('/control/login', { referrer: O + '/embed/adguard-home/' }), client: { clientIsShell: true }, want: { action: 'redirect', location: '/apps/adguard-home/control/login' } },
  { name: 'the shell reloads a frame page', req: topNav('/apps/radarr/movies', { referrer: O + '/apps/radarr/' }), want: { action: 'network', reason: 'shell' } },
  { name: 'app asset under its namespace', req: fetchReq('/embed/radarr/main.js'), client: { clientApp: 'radarr' }, want: { action: 'network', reason: 'embed' } },

  // Worker scripts
  { name: 'app fetching /sw.js gets an inert script', req: fetchReq('/sw.js'), client: { clientApp: 'jellyfin' }, want: { action: 'block-sw-script' } },
  { name: 'app fetching /service-worker.js gets an inert script', req: fetchReq('/service-worker.js'), client: { clientApp: 'jellyfin' }, want: { action: 'block-sw-script' } },
  { name: 'the shell fetching its own worker', req: fetchReq('/service-worker.js'), client: { clientIsShell: true }, want: { action: 'network' } },

  // OAuth callbacks
  { name: 'Actual /openid-cb navigation: network, page remembered as the app', req: iframeNav('/openid-cb?code=1', { referrer: O + '/embed/actual-budget/' }), want: { action: 'network', reason: 'oauth-callback', registerResulting: 'actual-budget' } },
  { name: 'AFFiNE /oauth/.../openid/callback with no app context', req: iframeNav('/x/openid/callback?state=2'), want: { action: 'network', reason: 'oauth-callback' }, absent: ['registerResulting'] },

  // Embed navigations
  { name: 'iframe navigation inside the namespace registers the app', req: iframeNav('/embed/adguard-home/login.html'), want: { action: 'embed-navigation', app: 'adguard-home' } },
  { name: 'app opened full-window at /embed/<app>/', req: topNav('/embed/jellyfin/web/'), want: { action: 'embed-navigation', app: 'jellyfin' } },
  { name: 'bare /embed/<app>', req: iframeNav('/embed/miniflux'), want: { action: 'embed-navigation', app: 'miniflux' } },

  // Known client: authoritative, reserved segments ignored
  { name: 'Radarr /api/v3 from a known client', req: fetchReq('/api/v3/system/status?x=1'), client: { clientApp: 'radarr', activeApp: 'sonarr' }, want: { action: 'fetch', url: '/embed/radarr/api/v3/system/status?x=1', app: 'radarr', via: 'client' } },
  { name: 'known client /icons collides with nothing', req: fetchReq('/icons/a.png'), client: { clientApp: 'sonarr' }, want: { action: 'fetch', url: '/embed/sonarr/icons/a.png', via: 'client' } },
  { name: 'known client and outpost path', req: fetchReq('/outpost.goauthentik.io/auth/start'), client: { clientApp: 'radarr' }, want: { action: 'network', reason: 'reserved' } },
  { name: 'known client of an app that is not stripped (miniflux)', req: fetchReq('/v1/feeds'), client: { clientApp: 'miniflux' }, noRewrite: ['miniflux'], want: { action: 'network', reason: 'no-rewrite' } },

  { name: 'frame navigation to Authentik reported with the app page as client', req: iframeNav('/application/o/authorize/?client_id=a'), client: { clientApp: 'actual-budget' }, want: { action: 'network', reason: 'reserved' } },
  { name: 'frame navigation to a root path reported with the app page as client', req: iframeNav('/setup'), client: { clientApp: 'jellyfin' }, want: { action: 'redirect', location: '/embed/jellyfin/setup', via: 'client' } },
  { name: 'known client fetching Authentik static assets is still rewritten (upstream: apps own /static)', req: fetchReq('/static/js/app.js'), client: { clientApp: 'radarr' }, want: { action: 'fetch', url: '/embed/radarr/static/js/app.js' } },

  // Unknown client: Referer, then active app
  { name: 'AdGuard CSS by Referer', req: fetchReq('/assets/index.css', { referrer: O + '/embed/adguard-home/' }), want: { action: 'network', reason: 'reserved' } },
  { name: 'root asset by Referer from /embed/', req: fetchReq('/static-assets/app.css', { referrer: O + '/embed/adguard-home/install.html' }), client: { activeApp: 'radarr' }, want: { action: 'fetch', url: '/embed/adguard-home/static-assets/app.css', via: 'referrer' } },
  { name: 'root asset by Referer from the shell frame page', req: fetchReq('/control/status', { referrer: O + '/apps/adguard-home/' }), want: { action: 'fetch', url: '/embed/adguard-home/control/status', via: 'referrer' } },
  { name: 'foreign Referer ignored, active app used', req: fetchReq('/control/status', { referrer: 'http://evil.example/embed/x/' }), client: { activeApp: 'adguard-home' }, want: { action: 'fetch', url: '/embed/adguard-home/control/status', via: 'active-app' } },
  { name: 'upstream /icons collision: an app icon by Referer', req: fetchReq('/icons/icon-192.png', { referrer: O + '/embed/jellyfin/web/' }), want: { action: 'fetch', url: '/embed/jellyfin/icons/icon-192.png', via: 'referrer' } },
  { name: 'no attribution at all', req: fetchReq('/control/status'), want: { action: 'network', reason: 'no-app-context' } },
  { name: 'unknown client, reserved /api stays with the shell', req: fetchReq('/api/v3/system/status'), client: { activeApp: 'sonarr' }, want: { action: 'network', reason: 'reserved' } },
  { name: 'unknown client, Authentik static', req: fetchReq('/static/dist/poly.js', { referrer: O + '/if/flow/x/' }), client: { activeApp: 'radarr' }, want: { action: 'network', reason: 'reserved' } },

  // Root-level iframe navigations
  { name: 'iframe goes to /login: stays with the app', req: iframeNav('/login?redirect=%2Fdashboard', { referrer: O + '/embed/jellyseerr/' }), want: { action: 'redirect', location: '/embed/jellyseerr/login?redirect=%2Fdashboard', status: 302, app: 'jellyseerr' } },
  { name: 'iframe goes to /install.html with only the active app', req: iframeNav('/install.html#top'), client: { activeApp: 'adguard-home' }, want: { action: 'redirect', location: '/embed/adguard-home/install.html', via: 'active-app' } },
  { name: 'iframe goes to Authentik authorize', req: iframeNav('/application/o/authorize/?client_id=x', { referrer: O + '/embed/actual-budget/' }), want: { action: 'network', reason: 'reserved' } },
  { name: 'iframe goes to the forward-auth outpost', req: iframeNav('/outpost.goauthentik.io/start?rd=x'), client: { activeApp: 'radarr' }, want: { action: 'network', reason: 'reserved' } },
  { name: 'iframe root navigation of an unstripped app', req: iframeNav('/login'), client: { activeApp: 'miniflux' }, noRewrite: ['miniflux'], want: { action: 'network', reason: 'no-rewrite' } },
  { name: 'POST form navigation at root', req: iframeNav('/login', { method: 'POST', referrer: O + '/embed/qbittorrent/' }), want: { action: 'redirect', location: '/embed/qbittorrent/login', status: 307 } },
];

describe('decide', () => {
  it.each(rows)('$name', (row) => {
    const req: RequestFacts = { method: 'GET', mode: 'cors', destination: '', referrer: '', ...row.req };
    const client: ClientFacts = { clientApp: null, clientIsShell: false, activeApp: null, ...row.client };
    const noRewrite = new Set(row.noRewrite ?? []);
    const got = decide(req, O, client, { needsRewrite: (a) => !noRewrite.has(a) });
    expect(got).toMatchObject(row.want);
    for (const key of row.absent ?? []) expect(got).not.toHaveProperty(key);
  });

  it('never rewrites a request of another origin, whatever the attribution', () => {
    const got = decide(
      { url: 'http://other.local/api/x', method: 'GET', mode: 'cors', destination: '', referrer: O + '/embed/radarr/' },
      O,
      { clientApp: 'radarr', clientIsShell: false, activeApp: 'radarr' },
      { needsRewrite: () => true },
    );
    expect(got).toEqual({ action: 'network', reason: 'cross-origin' });
  });

  it('treats a malformed URL as not ours', () => {
    const got = decide(
      { url: 'not a url', method: 'GET', mode: 'cors', destination: '', referrer: '' },
      O,
      { clientApp: 'radarr', clientIsShell: false, activeApp: null },
      { needsRewrite: () => true },
    );
    expect(got.action).toBe('network');
  });
});
