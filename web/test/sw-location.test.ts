import { describe, expect, it } from 'vitest';
import { correctRedirectedFetch, embedRedirectTarget, rewriteLocation } from '../src/sw/location';

const O = 'http://bloud.local';

describe('embedRedirectTarget', () => {
  it.each([
    ['/install.html', O + '/embed/adguard-home/', 'adguard-home', '/embed/adguard-home/install.html'],
    [O + '/control/', O + '/embed/adguard-home/', 'adguard-home', '/embed/adguard-home/control/'],
    ['/login?redirect=%2Fdashboard', O + '/embed/jellyseerr/', 'jellyseerr', '/embed/jellyseerr/login?redirect=%2Fdashboard'],
    ['/page#section', O + '/embed/radarr/x', 'radarr', '/embed/radarr/page#section'],
    // relative targets resolve against the URL that redirected
    ['setup', O + '/wizard/start', 'radarr', '/embed/radarr/wizard/setup'],
  ])('%s from %s for %s → %s', (target, base, app, want) => {
    expect(embedRedirectTarget(target, base, app, O)).toBe(want);
  });

  it.each([
    ['already inside the namespace', '/embed/adguard-home/login.html'],
    ['another app namespace', '/embed/authentik/x'],
    ['another origin', 'https://accounts.example.com/o/auth'],
    ['Authentik authorize', '/application/o/authorize/?client_id=bloud'],
    ['forward-auth outpost', '/outpost.goauthentik.io/start?rd=%2F'],
    ['Authentik flow', '/if/flow/default-authentication-flow/'],
    ['OAuth callback', '/openid-cb?code=1'],
  ])('leaves %s alone', (_name, target) => {
    expect(embedRedirectTarget(target, O + '/embed/adguard-home/', 'adguard-home', O)).toBeNull();
  });
});

describe('rewriteLocation', () => {
  it('keeps a root-absolute value root-absolute', () => {
    expect(rewriteLocation('/login', O + '/embed/radarr/', 'radarr', O)).toBe('/embed/radarr/login');
  });
  it('keeps an absolute value absolute', () => {
    expect(rewriteLocation(O + '/login?a=1', O + '/embed/radarr/', 'radarr', O)).toBe(O + '/embed/radarr/login?a=1');
  });
  it('returns values it must not touch unchanged', () => {
    expect(rewriteLocation('https://sso.example/', O + '/embed/radarr/', 'radarr', O)).toBe('https://sso.example/');
    expect(rewriteLocation('/embed/radarr/ok', O + '/embed/radarr/', 'radarr', O)).toBe('/embed/radarr/ok');
  });
});

describe('correctRedirectedFetch', () => {
  const req = O + '/embed/radarr/api/v3/x';
  it('refetches inside the namespace when the chain escaped to a root path', () => {
    expect(correctRedirectedFetch(req, O + '/login?returnUrl=%2F', true, 'radarr', O)).toBe(O + '/embed/radarr/login?returnUrl=%2F');
  });
  it('accepts a chain that stayed inside the namespace', () => {
    expect(correctRedirectedFetch(req, O + '/embed/radarr/login', true, 'radarr', O)).toBeNull();
  });
  it('does nothing without a redirect', () => {
    expect(correctRedirectedFetch(req, req, false, 'radarr', O)).toBeNull();
  });
  it('leaves a chain that ended at Authentik or another origin', () => {
    expect(correctRedirectedFetch(req, O + '/application/o/authorize/', true, 'radarr', O)).toBeNull();
    expect(correctRedirectedFetch(req, 'https://cdn.example/x', true, 'radarr', O)).toBeNull();
  });
});
