/**
 * The shell's routes, and the mapping between the shell URL `/apps/<app>/<path>` and the iframe
 * URL `/embed/<app>/<path>`. Pure functions; the view code only wires them to the DOM.
 */

export type Route =
  | { name: 'home' }
  | { name: 'catalog' }
  | { name: 'app-detail'; app: string }
  | { name: 'users' }
  | { name: 'system' }
  | { name: 'history' }
  | { name: 'login'; next: string | null }
  | { name: 'setup' }
  | { name: 'progress'; app: string; op: 'install' | 'uninstall' }
  | { name: 'app'; app: string; rest: string }
  | { name: 'not-found'; path: string };

const APP_NAME = /^[a-z0-9][a-z0-9._-]*$/i;

function decodedAppName(seg: string | undefined): string | null {
  if (seg === undefined || seg === '') return null;
  let name: string;
  try {
    name = decodeURIComponent(seg);
  } catch {
    return null;
  }
  return APP_NAME.test(name) && name !== '.' && name !== '..' ? name : null;
}

/** Only same-site relative paths are accepted as a post-login destination. */
export function safeNext(next: string | null): string | null {
  if (next === null || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) return null;
  return next;
}

/**
 * Where the login page sends the user: a shell page is rendered in place; anything else on this
 * origin (an app's `/embed/<app>/…`, where the proxy sent a signed-out browser) is loaded as a
 * document, since the shell has no view for it. `next` must have passed `safeNext`.
 */
export function loginDestination(next: string | null): { kind: 'shell' | 'document'; path: string } {
  if (next === null) return { kind: 'shell', path: '/' };
  const url = new URL(next, 'http://shell.invalid');
  // The URL parser normalises `/a/../\\evil` and the like; re-check what it made of it.
  if (url.origin !== 'http://shell.invalid') return { kind: 'shell', path: '/' };
  const path = url.pathname + url.search + url.hash;
  if (safeNext(path) === null) return { kind: 'shell', path: '/' };
  const route = parseRoute(url.pathname, url.search, url.hash);
  if (route.name === 'not-found' || route.name === 'login') return { kind: 'document', path };
  return { kind: 'shell', path };
}

export function parseRoute(pathname: string, search = '', hash = ''): Route {
  const params = new URLSearchParams(search);
  if (pathname === '/' || pathname === '') return { name: 'home' };
  if (pathname === '/catalog' || pathname === '/catalog/') return { name: 'catalog' };
  if (pathname === '/users' || pathname === '/users/') return { name: 'users' };
  const detail = /^\/catalog\/([^/]+)\/?$/.exec(pathname);
  if (detail) {
    const app = decodedAppName(detail[1]);
    if (app !== null) return { name: 'app-detail', app };
  }
  if (pathname === '/system' || pathname === '/system/') return { name: 'system' };
  if (pathname === '/system/history' || pathname === '/system/history/') return { name: 'history' };
  if (pathname === '/login') return { name: 'login', next: safeNext(params.get('next')) };
  if (pathname === '/setup') return { name: 'setup' };
  const progress = /^\/install\/([^/]+)\/?$/.exec(pathname);
  if (progress) {
    const app = decodedAppName(progress[1]);
    if (app !== null) return { name: 'progress', app, op: params.get('op') === 'uninstall' ? 'uninstall' : 'install' };
  }
  const frame = /^\/apps\/([^/]+)(\/.*)?$/.exec(pathname);
  if (frame) {
    const app = decodedAppName(frame[1]);
    if (app !== null) return { name: 'app', app, rest: (frame[2] ?? '/').slice(1) + search + hash };
  }
  return { name: 'not-found', path: pathname };
}

/** `/embed/<app>/<rest>` for the iframe. `rest` is the shell URL after `/apps/<app>/` (path, query, hash). */
export function embedSrc(app: string, rest: string): string {
  return `/embed/${encodeURIComponent(app)}/${stripLeadingSlashes(rest)}`;
}

/** The catalog's page about one app. */
export function appDetailPath(app: string): string {
  return `/catalog/${encodeURIComponent(app)}`;
}

export function shellAppPath(app: string, rest = ''): string {
  return `/apps/${encodeURIComponent(app)}/${stripLeadingSlashes(rest)}`;
}

function stripLeadingSlashes(s: string): string {
  // `//host` after the prefix would change meaning if the prefix were ever dropped.
  return s.replace(/^\/+/, '');
}

/**
 * The shell URL for where the iframe is now, or null when the iframe has left the app's
 * namespace (an Authentik page, another app): the shell URL then stays where it was.
 */
export function shellPathForFrame(app: string, frame: { pathname: string; search: string; hash: string }): string | null {
  const prefix = `/embed/${encodeURIComponent(app)}`;
  if (frame.pathname !== prefix && !frame.pathname.startsWith(prefix + '/')) return null;
  const rest = frame.pathname.slice(prefix.length).replace(/^\//, '');
  return shellAppPath(app, rest + frame.search + frame.hash);
}
