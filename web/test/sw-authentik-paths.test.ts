import { describe, expect, it } from 'vitest';
import { embedRedirectTarget } from '../src/sw/location';
import { AUTHENTIK_PATHS, isAuthentikPath, isNeverClientRewritten, isReservedRoot } from '../src/sw/paths';
import examples from './fixtures/authentik-path-examples.json';

const O = 'http://bloud.local';

describe('Authentik paths (one list with the proxy: src/sw/authentik-paths.json)', () => {
  it('comes from the shared file', () => {
    expect(AUTHENTIK_PATHS.map((p) => p.path)).toEqual(
      expect.arrayContaining(['/outpost.goauthentik.io', '/application', '/flows', '/if', '/-', '/static']),
    );
    expect(isNeverClientRewritten('/outpost.goauthentik.io/auth/start')).toBe(true);
    expect(isNeverClientRewritten('/if/flow/x/')).toBe(false);
  });

  // The proxy's unit test (proxy/src/embed/config.rs) checks the same table against its rewriter.
  it.each(examples.examples)('$path: Authentik $authentik, prefixed $prefixed', ({ path, authentik, prefixed }) => {
    const pathname = new URL(path, O).pathname;
    expect(isAuthentikPath(pathname)).toBe(authentik);
    if (authentik) expect(isReservedRoot(pathname)).toBe(true);
    const target = embedRedirectTarget(path, O + '/embed/app/', 'app', O);
    expect(target).toBe(prefixed ? '/embed/app' + path : null);
  });
});
