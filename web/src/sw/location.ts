/**
 * Redirect handling for embedded apps.
 *
 * The proxy already rewrites `Location` headers it can see (embed middleware, `location: true`).
 * The worker covers what happens after: a sub-resource fetch it made for an app followed a redirect
 * to a root-level URL (that URL would be served by the shell, not the app), or a navigation hop
 * landed at a root path.
 */
import { appFromEmbedPath, isNeverPrefixed, isOAuthCallback, isUnderEmbed } from './paths';

/**
 * Where a redirect target should point for an app embedded at `/embed/<app>/`.
 * `target` may be relative (resolved against `base`, the URL that answered with the redirect).
 * Returns the rewritten path (with query and fragment) or null when it must be left alone:
 * another origin, already inside `/embed/`, Authentik's pages, OAuth callbacks.
 */
export function embedRedirectTarget(target: string, base: string, app: string, origin: string): string | null {
  let url: URL;
  try {
    url = new URL(target, base);
  } catch {
    return null;
  }
  if (url.origin !== origin) return null;
  if (isUnderEmbed(url.pathname)) return null;
  // The proxy's embed rewriter leaves the same Authentik paths alone in `Location` headers.
  if (isNeverPrefixed(url.pathname) || isOAuthCallback(url.pathname)) return null;
  return `/embed/${app}${url.pathname}${url.search}${url.hash}`;
}

/**
 * A `Location` header value rewritten for `app`, keeping the value's form: a root-absolute value
 * stays root-absolute, an absolute URL on our origin stays absolute. Unchanged when it must be left alone.
 */
export function rewriteLocation(location: string, base: string, app: string, origin: string): string {
  const rewritten = embedRedirectTarget(location, base, app, origin);
  if (rewritten === null) return location;
  return /^[a-z][a-z0-9+.-]*:/i.test(location) ? origin + rewritten : rewritten;
}

/**
 * After fetching `requested` for `app` with redirects followed, the response came from
 * `finalUrl`. If the chain escaped to a root path (the app sent `Location: /login` and the
 * proxy did not rewrite it), return the URL to fetch instead; null when the response is right.
 */
export function correctRedirectedFetch(
  requested: string,
  finalUrl: string,
  redirected: boolean,
  app: string,
  origin: string,
): string | null {
  if (!redirected || finalUrl === '' || finalUrl === requested) return null;
  let final: URL;
  try {
    final = new URL(finalUrl);
  } catch {
    return null;
  }
  if (final.origin !== origin) return null;
  const landedIn = appFromEmbedPath(final.pathname);
  if (landedIn !== null) return null;
  const target = embedRedirectTarget(final.pathname + final.search, finalUrl, app, origin);
  return target === null ? null : origin + target.replace(/#.*$/, '');
}
