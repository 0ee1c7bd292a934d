import { describe, expect, it } from 'vitest';
import { needsRewrite, resolveBootstrap } from '../src/bootstrap';
import { choicesBody, choiceOptions, connections, extraInstalls, initialChoices, missingRequired } from '../src/plan';
import { phaseOf, parseAppsSnapshot, parseLogEvent } from '../src/progress';
import { embedSrc, loginDestination, parseRoute, safeNext, shellAppPath, shellPathForFrame } from '../src/routes';
import type { CatalogApp, InstallPlan, InstalledApp } from '../src/types';

describe('parseRoute', () => {
  it.each([
    ['/', '', '', { name: 'home' }],
    ['/catalog', '', '', { name: 'catalog' }],
    ['/users', '', '', { name: 'users' }],
    ['/setup', '', '', { name: 'setup' }],
    ['/login', '?next=%2Fapps%2Fradarr%2F', '', { name: 'login', next: '/apps/radarr/' }],
    ['/login', '?next=https://evil.example/', '', { name: 'login', next: null }],
    ['/login', '?next=//evil.example/', '', { name: 'login', next: null }],
    ['/install/radarr', '', '', { name: 'progress', app: 'radarr', op: 'install' }],
    ['/install/radarr', '?op=uninstall', '', { name: 'progress', app: 'radarr', op: 'uninstall' }],
    ['/apps/adguard-home', '', '', { name: 'app', app: 'adguard-home', rest: '' }],
    ['/apps/adguard-home/', '', '', { name: 'app', app: 'adguard-home', rest: '' }],
    ['/apps/radarr/movies/1', '?sort=a', '#top', { name: 'app', app: 'radarr', rest: 'movies/1?sort=a#top' }],
    ['/apps/jellyfin/web/index.html', '', '#!/home.html', { name: 'app', app: 'jellyfin', rest: 'web/index.html#!/home.html' }],
    ['/apps/..%2F..%2Fapi/', '', '', { name: 'not-found', path: '/apps/..%2F..%2Fapi/' }],
    ['/apps/', '', '', { name: 'not-found', path: '/apps/' }],
    ['/nope', '', '', { name: 'not-found', path: '/nope' }],
  ])('%s%s%s', (path, search, hash, want) => {
    expect(parseRoute(path, search, hash)).toEqual(want);
  });
});

describe('shell ↔ iframe URLs', () => {
  it('the iframe for /apps/<app>/<rest> is /embed/<app>/<rest>', () => {
    const r = parseRoute('/apps/radarr/movies/1', '?sort=a', '#top');
    expect(r.name === 'app' && embedSrc(r.app, r.rest)).toBe('/embed/radarr/movies/1?sort=a#top');
    expect(embedSrc('miniflux', '')).toBe('/embed/miniflux/');
    // never produce a protocol-relative URL
    expect(embedSrc('x', '//evil.example/')).toBe('/embed/x/evil.example/');
  });

  it('the shell follows the iframe inside its namespace and round-trips', () => {
    const frame = { pathname: '/embed/radarr/movies/2', search: '?q=1', hash: '#h' };
    const shell = shellPathForFrame('radarr', frame);
    expect(shell).toBe('/apps/radarr/movies/2?q=1#h');
    const url = new URL(shell ?? '', 'http://x');
    const back = parseRoute(url.pathname, url.search, url.hash);
    expect(back.name === 'app' && embedSrc(back.app, back.rest)).toBe('/embed/radarr/movies/2?q=1#h');
    expect(shellPathForFrame('radarr', { pathname: '/embed/radarr', search: '', hash: '' })).toBe('/apps/radarr/');
  });

  it('stays put when the iframe leaves the namespace', () => {
    expect(shellPathForFrame('radarr', { pathname: '/if/flow/login/', search: '', hash: '' })).toBeNull();
    expect(shellPathForFrame('radarr', { pathname: '/embed/radarr2/x', search: '', hash: '' })).toBeNull();
    expect(shellPathForFrame('radarr', { pathname: '/embed/sonarr/', search: '', hash: '' })).toBeNull();
  });

  it('builds shell paths and filters next= targets', () => {
    expect(shellAppPath('radarr')).toBe('/apps/radarr/');
    expect(safeNext('/catalog')).toBe('/catalog');
    expect(safeNext('/\\evil.example')).toBeNull();
    expect(safeNext(null)).toBeNull();
  });
});

describe('login return path', () => {
  it.each([
    // The proxy sends a signed-out browser from an app to /login?next=/embed/<app>/…
    ['/login?next=%2Fembed%2Fradarr%2Fmovies%3Fx%3D1', { kind: 'document', path: '/embed/radarr/movies?x=1' }],
    ['/login?next=/embed/radarr/', { kind: 'document', path: '/embed/radarr/' }],
    ['/login?next=/catalog', { kind: 'shell', path: '/catalog' }],
    ['/login?next=/apps/radarr/x', { kind: 'shell', path: '/apps/radarr/x' }],
    ['/login', { kind: 'shell', path: '/' }],
    // Other origins never: scheme-relative, backslash, absolute URLs, encoded tricks.
    ['/login?next=//evil.example/', { kind: 'shell', path: '/' }],
    ['/login?next=%2F%2Fevil.example%2F', { kind: 'shell', path: '/' }],
    ['/login?next=/%5Cevil.example', { kind: 'shell', path: '/' }],
    ['/login?next=/\\evil.example', { kind: 'shell', path: '/' }],
    ['/login?next=https://evil.example/', { kind: 'shell', path: '/' }],
    ['/login?next=javascript:alert(1)', { kind: 'shell', path: '/' }],
    ['/login?next=/./\\evil.example', { kind: 'shell', path: '/' }],
    // Browsers drop tabs and newlines from URLs: `/<TAB>/evil` would be `//evil`.
    ['/login?next=/%09/evil.example/', { kind: 'shell', path: '/' }],
    ['/login?next=/%0A/evil.example/', { kind: 'shell', path: '/' }],
  ])('%s', (url, want) => {
    const u = new URL(url, 'http://bloud.local');
    const route = parseRoute(u.pathname, u.search);
    expect(route.name).toBe('login');
    const next = route.name === 'login' ? route.next : null;
    expect(loginDestination(next)).toEqual(want);
  });
});

describe('rebuild log events', () => {
  it('reads upstream RebuildEvent JSON', () => {
    expect(parseLogEvent('{"type":"output","message":"building the system configuration..."}')).toEqual({
      kind: 'output',
      lines: ['building the system configuration...'],
    });
    expect(parseLogEvent('{"type":"error","message":"Rebuild failed: exit status 1"}')).toEqual({
      kind: 'error',
      lines: ['Rebuild failed: exit status 1'],
    });
    expect(parseLogEvent('{"type":"complete","message":"Rebuild completed successfully","success":true}')).toEqual({
      kind: 'complete',
      lines: ['Rebuild completed successfully'],
      success: true,
    });
    expect(parseLogEvent('{"type":"complete","message":"done"}').success).toBe(false);
  });

  it('splits multi-line messages and takes raw text lines as output', () => {
    expect(parseLogEvent('{"type":"output","message":"a\\r\\nb\\n"}').lines).toEqual(['a', 'b']);
    expect(parseLogEvent('2026-11-26T05:00:00 unit started')).toEqual({ kind: 'output', lines: ['2026-11-26T05:00:00 unit started'] });
    expect(parseLogEvent('{not json')).toEqual({ kind: 'output', lines: ['{not json'] });
  });
});

describe('apps snapshots and progress phases', () => {
  const row = (status: string): InstalledApp => ({
    id: 1,
    name: 'radarr',
    display_name: 'Radarr',
    version: '',
    status,
    is_system: false,
    installed_at: '',
    updated_at: '',
  });

  it('parses snapshots, upstream null as empty, rejects garbage', () => {
    expect(parseAppsSnapshot('null')).toEqual([]);
    expect(parseAppsSnapshot(JSON.stringify([row('running'), { bogus: 1 }]))).toHaveLength(1);
    expect(parseAppsSnapshot('{"apps":[]}')).toBeNull();
    expect(parseAppsSnapshot('nope')).toBeNull();
  });

  it('follows an install through its statuses', () => {
    expect(phaseOf('install', undefined, false).phase).toBe('waiting');
    expect(phaseOf('install', row('installing'), true).phase).toBe('working');
    expect(phaseOf('install', row('starting'), true).phase).toBe('working');
    expect(phaseOf('install', row('running'), true)).toEqual({ phase: 'done', label: 'Running' });
    expect(phaseOf('install', row('failed'), true).phase).toBe('failed');
    expect(phaseOf('install', row('error'), true).phase).toBe('failed');
    expect(phaseOf('install', undefined, true).phase).toBe('failed');
  });

  it('follows an uninstall until the app is gone', () => {
    expect(phaseOf('uninstall', row('running'), true).phase).toBe('waiting');
    expect(phaseOf('uninstall', row('uninstalling'), true).phase).toBe('working');
    expect(phaseOf('uninstall', undefined, true)).toEqual({ phase: 'done', label: 'Removed' });
  });
});

describe('bootstrap metadata', () => {
  const actual: CatalogApp = {
    name: 'actual-budget',
    displayName: 'Actual Budget',
    description: 'Budgeting',
    category: 'productivity',
    port: 5006,
    bootstrap: {
      indexedDB: {
        database: 'actual',
        intercepts: [{ store: 'asyncStorage', key: 'server-url', value: '{{embedUrl}}' }],
        writes: [{ store: 'asyncStorage', key: 'theme', value: 'light' }],
      },
    },
  };

  it('substitutes templates into intercepts and keeps writes', () => {
    const r = resolveBootstrap(actual, 'http://bloud.local');
    expect(r.intercepts).toEqual({
      indexedDB: {
        database: 'actual',
        intercepts: [{ store: 'asyncStorage', key: 'server-url', value: 'http://bloud.local/embed/actual-budget' }],
      },
    });
    expect(r.writes).toEqual([{ database: 'actual', store: 'asyncStorage', key: 'theme', value: 'light' }]);
  });

  it('substitutes catalog fields and leaves unknown names visible', () => {
    const app: CatalogApp = {
      ...actual,
      bootstrap: { localStorage: { intercepts: [{ key: 'k', jsonPatch: { 'a.b': '{{origin}}:{{port}}/{{nope}}' } }] } },
    };
    expect(resolveBootstrap(app, 'http://h').intercepts).toEqual({
      localStorage: { intercepts: [{ key: 'k', jsonPatch: { 'a.b': 'http://h:5006/{{nope}}' } }] },
    });
  });

  it('no bootstrap, no intercepts; stripPrefix false turns rewriting off', () => {
    expect(resolveBootstrap({ ...actual, bootstrap: null }, 'http://h')).toEqual({ intercepts: null, writes: [] });
    expect(needsRewrite(actual)).toBe(true);
    expect(needsRewrite({ ...actual, routing: { stripPrefix: false } })).toBe(false);
  });
});

describe('install plan presentation', () => {
  // jellyseerr: mediaServer required (jellyfin not installed), movieManager optional (radarr installed)
  const plan: InstallPlan = {
    app: 'jellyseerr',
    canInstall: true,
    blockers: null,
    choices: [
      { integration: 'mediaServer', required: true, installed: [], available: [{ app: 'jellyfin', default: true }], recommended: 'jellyfin' },
      { integration: 'tvManager', required: false, installed: null, available: [{ app: 'sonarr' }], recommended: '' },
      {
        integration: 'movieManager',
        required: false,
        installed: [{ app: 'radarr' }],
        available: [{ app: 'radarr' }, { app: 'other' }],
        recommended: '',
      },
    ],
    autoConfig: null,
    dependents: null,
  };

  it('lists as connected only what the plan states: filled integrations and sign-in', () => {
    const label = (n: string) => ({ postgres: 'PostgreSQL' })[n] ?? n;
    expect(connections(plan, label)).toEqual([]);
    const miniflux: InstallPlan = {
      ...plan,
      app: 'miniflux',
      choices: [],
      autoConfig: [{ target: 'miniflux', source: 'postgres', integration: 'database' }],
      signIn: [
        { kind: 'login', text: "Protected by Bloud's login" },
        { kind: 'oidc', text: 'Sign in with your Bloud account (OpenID Connect)' },
      ],
    };
    expect(connections(miniflux, label)).toEqual([
      'PostgreSQL as database',
      "Protected by Bloud's login",
      'Sign in with your Bloud account (OpenID Connect)',
    ]);
  });

  it('lists installed candidates first without duplicates', () => {
    expect(choiceOptions(plan.choices?.[2] as never).map((o) => [o.app, o.installed])).toEqual([
      ['radarr', true],
      ['other', false],
    ]);
  });

  it('preselects the recommendation, an installed app, or nothing for optional choices', () => {
    const c = initialChoices(plan);
    expect(c).toEqual({ mediaServer: 'jellyfin', tvManager: '', movieManager: 'radarr' });
    expect(extraInstalls(plan, c)).toEqual(['jellyfin']);
    expect(choicesBody(c)).toEqual({ mediaServer: 'jellyfin', movieManager: 'radarr' });
    expect(missingRequired(plan, c)).toEqual([]);
    expect(missingRequired(plan, { ...c, mediaServer: '' })).toEqual(['mediaServer']);
    expect(extraInstalls(plan, { ...c, tvManager: 'sonarr' })).toEqual(['jellyfin', 'sonarr']);
  });
});
