/**
 * Path classification shared by the service worker's decision procedure.
 * Everything here is pure so the table-driven tests can pin it down.
 */

import authentikPaths from './authentik-paths.json';

export const EMBED_PREFIX = '/embed/';

/** Fetches of these are answered with an inert script when an embedded app asks for them. */
export const SW_SCRIPT_PATHS: ReadonlySet<string> = new Set(['/sw.js', '/service-worker.js']);

/**
 * First path segments that belong to the shell and its API. Sub-resource requests to them are
 * never re-attributed by Referer or active app: the shell itself uses them. An iframe navigation
 * to one of these is different (the shell never puts its own pages in an iframe), see
 * `isShellOnlyForSubresources`.
 */
export const SHELL_SEGMENTS: ReadonlySet<string> = new Set([
  'api',
  'auth',
  'apps',
  'assets',
  'catalog',
  'install',
  'login',
  'setup',
  // Vite dev server paths (never present in a production build).
  'src',
  'node_modules',
]);

/** One of Authentik's root routes; see `authentik-paths.json` for what the flags mean. */
export interface AuthentikPath {
  readonly path: string;
  readonly neverClientRewritten?: boolean;
  readonly sharedWithApps?: boolean;
}

/**
 * Authentik's root-level routes (the proxy sends them to Authentik). An embedded app is redirected
 * here for forward-auth and OIDC; these must reach Authentik unchanged, navigations included.
 * The proxy's embed rewriter builds its list from the same file, so both sides agree.
 */
export const AUTHENTIK_PATHS: readonly AuthentikPath[] = authentikPaths.paths;

/** `pathname` is `pattern` or lies below it on a segment boundary (`/if` covers `/if/x`, not `/ifx`). */
export function isAtOrBelow(pathname: string, pattern: string): boolean {
  return (
    pathname.startsWith(pattern) &&
    (pathname.length === pattern.length || pattern.endsWith('/') || pathname[pattern.length] === '/')
  );
}

/** Exact shell files at the root of the build. */
const SHELL_FILES: ReadonlySet<string> = new Set(['/', '/index.html']);

export function firstSegment(pathname: string): string {
  const rest = pathname.startsWith('/') ? pathname.slice(1) : pathname;
  const slash = rest.indexOf('/');
  return slash === -1 ? rest : rest.slice(0, slash);
}

/** App names are catalog directory names: keep the same conservative alphabet as the agent. */
const APP_NAME = /^[a-z0-9][a-z0-9._-]*$/i;

export function isValidAppName(name: string): boolean {
  return APP_NAME.test(name) && name !== '.' && name !== '..';
}

/** `/embed/<app>` or `/embed/<app>/…` → app, else null. */
export function appFromEmbedPath(pathname: string): string | null {
  return appUnder(pathname, '/embed/');
}

/** `/apps/<app>` or `/apps/<app>/…` (the shell's frame page) → app, else null. */
export function appFromShellPath(pathname: string): string | null {
  return appUnder(pathname, '/apps/');
}

function appUnder(pathname: string, prefix: string): string | null {
  if (!pathname.startsWith(prefix)) return null;
  const rest = pathname.slice(prefix.length);
  const slash = rest.indexOf('/');
  const name = decodeSegment(slash === -1 ? rest : rest.slice(0, slash));
  return name !== null && isValidAppName(name) ? name : null;
}

function decodeSegment(seg: string): string | null {
  try {
    return decodeURIComponent(seg);
  } catch {
    return null;
  }
}

export function isUnderEmbed(pathname: string): boolean {
  return pathname === '/embed' || pathname.startsWith(EMBED_PREFIX);
}

export function isAuthentikPath(pathname: string): boolean {
  return AUTHENTIK_PATHS.some((p) => isAtOrBelow(pathname, p.path));
}

/** Never rewritten even when the requesting client is known to be an app (forward-auth outpost). */
export function isNeverClientRewritten(pathname: string): boolean {
  return AUTHENTIK_PATHS.some((p) => p.neverClientRewritten === true && isAtOrBelow(pathname, p.path));
}

/**
 * Authentik's paths that no app uses for its own files: a redirect of an app there is meant for
 * Authentik. The same paths the proxy's embed rewriter never prefixes (`/static` is not one: an
 * app's `/static/…` is the app's).
 */
export function isNeverPrefixed(pathname: string): boolean {
  return AUTHENTIK_PATHS.some((p) => p.sharedWithApps !== true && isAtOrBelow(pathname, p.path));
}

/** Paths that sub-resource requests must leave alone unless the requesting client is an app. */
export function isReservedRoot(pathname: string): boolean {
  if (SHELL_FILES.has(pathname)) return true;
  if (pathname.startsWith('/@')) return true; // Vite dev: /@vite/client, /@fs/…
  return SHELL_SEGMENTS.has(firstSegment(pathname)) || isAuthentikPath(pathname);
}

/** OAuth callbacks go to the network untouched (upstream: rewriting /openid-cb broke Actual). */
export function isOAuthCallback(pathname: string): boolean {
  return pathname.includes('/openid/callback') || pathname === '/openid-cb';
}

/**
 * The app a Referer points at: the iframe namespace (`/embed/<a>/…`) or the shell's frame page
 * (`/apps/<a>/…`). Only same-origin referrers count.
 */
export function appFromReferrer(referrer: string, origin: string): string | null {
  if (!referrer) return null;
  let ref: URL;
  try {
    ref = new URL(referrer);
  } catch {
    return null;
  }
  if (ref.origin !== origin) return null;
  return appFromEmbedPath(ref.pathname) ?? appFromShellPath(ref.pathname);
}

/** `/embed/<app>` + path + query of `url` (the hash never reaches the network). */
export function embedPathFor(app: string, url: URL): string {
  return `/embed/${app}${url.pathname}${url.search}`;
}
