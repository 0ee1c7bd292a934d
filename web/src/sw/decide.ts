/**
 * The service worker's decision procedure, free of any worker API so it can be tested as a table.
 *
 * Order of precedence (see web/README.md "Service worker"):
 *  1. cross-origin → network
 *  2. the shell's own document and requests → network
 *  3. fetches of the worker script from an app → inert script
 *  4. OAuth callbacks → network (remember which app the resulting page belongs to)
 *  5. `/embed/<app>/…`: navigations register the new client for the app; everything else → network
 *  6. a root-level request from a client known to be an app → that app's namespace
 *     (ignores the shell's reserved paths: apps like Radarr use `/api/v3/`)
 *  7. otherwise attribute by Referer, then by the app the shell shows; reserved paths are left alone
 */
import {
  appFromEmbedPath,
  appFromReferrer,
  embedPathFor,
  isAuthentikPath,
  isNeverClientRewritten,
  isOAuthCallback,
  isReservedRoot,
  isUnderEmbed,
  SW_SCRIPT_PATHS,
} from './paths';

export interface RequestFacts {
  url: string;
  method: string;
  mode: RequestMode;
  /** `document` for a top-level navigation, `iframe`/`frame` for a nested one, `''` for fetch(). */
  destination: RequestDestination;
  referrer: string;
}

export interface ClientFacts {
  /** App the requesting client (event.clientId) is attributed to, from the persisted map or its URL. */
  clientApp: string | null;
  /** The requesting client is the shell itself (a top-level window outside `/embed/`). */
  clientIsShell: boolean;
  /** App the shell currently shows, if the shell that said so is still open. */
  activeApp: string | null;
}

export interface Policy {
  /** Whether root-level URLs of `app` must be moved under `/embed/<app>/` (routing.stripPrefix). */
  needsRewrite(app: string): boolean;
}

export type Decision =
  /** No respondWith: the browser goes to the network itself. */
  | { action: 'network'; reason: NetworkReason; registerResulting?: string }
  | { action: 'block-sw-script' }
  /** Navigation at a root path: tell the browser to go to the app's namespace instead. */
  | { action: 'redirect'; location: string; status: 302 | 307; app: string; via: Attribution }
  /** Sub-resource at a root path: answer with the same request made under the app's namespace. */
  | { action: 'fetch'; url: string; app: string; via: Attribution }
  /** Navigation inside `/embed/<app>/`: the resulting document belongs to `app`. */
  | { action: 'embed-navigation'; app: string };

export type NetworkReason =
  | 'cross-origin'
  | 'shell'
  | 'oauth-callback'
  | 'embed'
  | 'reserved'
  | 'no-rewrite'
  | 'no-app-context'
  | 'sw-script';

export type Attribution = 'client' | 'referrer' | 'active-app';

export function isNavigation(req: RequestFacts): boolean {
  return req.mode === 'navigate';
}

function isNestedNavigation(req: RequestFacts): boolean {
  return req.mode === 'navigate' && (req.destination === 'iframe' || req.destination === 'frame');
}

export function isTopLevelNavigation(req: RequestFacts): boolean {
  return req.mode === 'navigate' && !isNestedNavigation(req);
}

export function decide(req: RequestFacts, origin: string, client: ClientFacts, policy: Policy): Decision {
  let url: URL;
  try {
    url = new URL(req.url);
  } catch {
    return { action: 'network', reason: 'cross-origin' };
  }
  if (url.origin !== origin) return { action: 'network', reason: 'cross-origin' };
  const path = url.pathname;

  // The shell's own page loads and its API calls are never touched. A top-level navigation is the
  // user (or the shell) moving the whole tab; the shell is what lives there.
  // Navigations are judged by where they go: browsers may report the navigated window's (or
  // the initiator's) client for them, which says nothing about the document being loaded.
  if (client.clientIsShell && !isNavigation(req)) return { action: 'network', reason: 'shell' };
  if (isTopLevelNavigation(req)) {
    // An app opened full-window at /embed/<app>/ is still that app.
    const app = appFromEmbedPath(path);
    if (app !== null) return { action: 'embed-navigation', app };
    // An embedded page sent the whole tab to one of its root paths (`top.location = '/x'`):
    // show that page in the shell's frame for the app instead of the shell's "not found".
    const from = appFromEmbedPath(refererPath(req.referrer, origin));
    if (from !== null && !isReservedRoot(path) && !isOAuthCallback(path) && policy.needsRewrite(from)) {
      return { action: 'redirect', location: `/apps/${from}${path}${url.search}`, status: 302, app: from, via: 'referrer' };
    }
    return { action: 'network', reason: 'shell' };
  }

  if (SW_SCRIPT_PATHS.has(path)) {
    // An embedded app must not register a worker over the shell's scope.
    return client.clientApp !== null || isNestedNavigation(req)
      ? { action: 'block-sw-script' }
      : { action: 'network', reason: 'sw-script' };
  }

  if (isOAuthCallback(path)) {
    // The callback page stays at its root URL; remember its app so its assets are rewritten.
    const app = client.clientApp ?? appFromReferrer(req.referrer, origin) ?? client.activeApp;
    return isNavigation(req) && app !== null
      ? { action: 'network', reason: 'oauth-callback', registerResulting: app }
      : { action: 'network', reason: 'oauth-callback' };
  }

  if (isUnderEmbed(path)) {
    const app = appFromEmbedPath(path);
    if (app !== null && isNavigation(req)) return { action: 'embed-navigation', app };
    return { action: 'network', reason: 'embed' };
  }

  if (client.clientApp !== null) {
    const app = client.clientApp;
    if (isNeverClientRewritten(path)) return { action: 'network', reason: 'reserved' };
    // The app's page sending its frame to Authentik (forward-auth or OIDC login) must get there.
    if (isNavigation(req) && isAuthentikPath(path)) return { action: 'network', reason: 'reserved' };
    if (!policy.needsRewrite(app)) return { action: 'network', reason: 'no-rewrite' };
    return rootDecision(req, url, app, 'client');
  }

  // A nested navigation comes from an embedded page (the shell only creates /embed/ iframes), so
  // only Authentik's pages are reserved for it: `/login` there is the app's login, not the shell's.
  const reserved = isNestedNavigation(req) ? isAuthentikPath(path) : isReservedRoot(path);
  if (reserved) return { action: 'network', reason: 'reserved' };

  const fromReferrer = appFromReferrer(req.referrer, origin);
  const app = fromReferrer ?? client.activeApp;
  if (app === null) return { action: 'network', reason: 'no-app-context' };
  if (!policy.needsRewrite(app)) return { action: 'network', reason: 'no-rewrite' };
  return rootDecision(req, url, app, fromReferrer !== null ? 'referrer' : 'active-app');
}

function refererPath(referrer: string, origin: string): string {
  try {
    const u = new URL(referrer);
    return u.origin === origin ? u.pathname : '';
  } catch {
    return '';
  }
}

function rootDecision(req: RequestFacts, url: URL, app: string, via: Attribution): Decision {
  const target = embedPathFor(app, url);
  return isNavigation(req)
    ? // 307 keeps a form POST a POST (with its body) at the new URL; 302 would turn it into a GET.
      { action: 'redirect', location: target, status: req.method === 'GET' || req.method === 'HEAD' ? 302 : 307, app, via }
    : { action: 'fetch', url: target, app, via };
}
