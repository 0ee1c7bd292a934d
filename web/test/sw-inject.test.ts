import { IDBFactory, IDBObjectStore } from 'fake-indexeddb';
import { describe, expect, it } from 'vitest';
import { hasIntercepts, injectIntercepts, interceptScript } from '../src/sw/inject';
import type { InterceptConfig } from '../src/sw/messages';
import { parseShellMessage } from '../src/sw/messages';

const actual: InterceptConfig = {
  indexedDB: {
    database: 'actual',
    intercepts: [{ store: 'asyncStorage', key: 'server-url', value: 'http://bloud.local/embed/actual-budget' }],
  },
};

describe('injectIntercepts', () => {
  it('goes right after <head>, not after <header>', () => {
    const out = injectIntercepts('<html><body><header class="x">h</header><head><title>t</title></head>', actual);
    expect(out.indexOf('<meta name="bloud-intercept-config"')).toBe(out.indexOf('<head>') + '<head>'.length);
    expect(out).toContain('<header class="x">h</header>');
  });

  it('handles <head> with attributes and upper case', () => {
    const out = injectIntercepts('<!DOCTYPE html><HTML><HEAD lang="en"><title>t</title>', actual);
    expect(out.startsWith('<!DOCTYPE html><HTML><HEAD lang="en"><meta name="bloud-intercept-config"')).toBe(true);
  });

  it('falls back to after the doctype, then to the start', () => {
    expect(injectIntercepts('<!doctype html><p>x</p>', actual)).toMatch(/^<!doctype html><meta name="bloud-intercept-config"/);
    expect(injectIntercepts('<p>x</p>', actual)).toMatch(/^<meta name="bloud-intercept-config"[^]*<\/script><p>x<\/p>$/);
  });

  it('cannot be broken out of by a value containing </script>', () => {
    const evil: InterceptConfig = { localStorage: { intercepts: [{ key: 'k', value: '</script><script>alert(1)</script>' }] } };
    const out = injectIntercepts('<head></head>', evil);
    expect(out.match(/<\/script>/g)).toHaveLength(1);
    expect(out).toContain('content="{&quot;localStorage&quot;');
  });
});

describe('the intercept script, as the page runs it', () => {
  class FakeStorage {
    private readonly m = new Map<string, string>();
    getItem(k: string): string | null {
      return this.m.get(k) ?? null;
    }
    setItem(k: string, v: string): void {
      this.m.set(k, v);
    }
  }

  function run(config: InterceptConfig, win: Record<string, unknown>): void {
    new Function('window', interceptScript(config))(win);
  }

  it('replaces and JSON-patches localStorage values, leaving other keys and sessionStorage alone', () => {
    const localStorage = new FakeStorage();
    const sessionStorage = new FakeStorage();
    const win = { Storage: FakeStorage, localStorage, sessionStorage };
    localStorage.setItem('jellyfin_credentials', JSON.stringify({ Servers: [{ Id: 's1', ManualAddress: 'http://old' }] }));
    localStorage.setItem('other', 'untouched');
    sessionStorage.setItem('server', 'session');
    run(
      {
        localStorage: {
          intercepts: [
            { key: 'server', value: 'http://bloud.local/embed/x' },
            { key: 'jellyfin_credentials', jsonPatch: { 'Servers.0.ManualAddress': 'http://bloud.local/embed/jellyfin' } },
            { key: 'fresh', jsonPatch: { 'a.0.b': 1 } },
          ],
        },
      },
      win,
    );
    expect(localStorage.getItem('server')).toBe('http://bloud.local/embed/x');
    expect(JSON.parse(localStorage.getItem('jellyfin_credentials') ?? 'null')).toEqual({
      Servers: [{ Id: 's1', ManualAddress: 'http://bloud.local/embed/jellyfin' }],
    });
    expect(JSON.parse(localStorage.getItem('fresh') ?? 'null')).toEqual({ a: [{ b: 1 }] });
    expect(localStorage.getItem('other')).toBe('untouched');
    expect(sessionStorage.getItem('server')).toBe('session');
  });

  it('makes IndexedDB reads of the configured key return the configured value', async () => {
    const indexedDB = new IDBFactory();
    const proto = IDBObjectStore.prototype as unknown as { get: unknown };
    const originalGet = proto.get;
    try {
      run(actual, { IDBObjectStore });
      const db = await new Promise<IDBDatabase>((resolve, reject) => {
        const open = indexedDB.open('actual', 1);
        open.onupgradeneeded = () => open.result.createObjectStore('asyncStorage');
        open.onsuccess = () => resolve(open.result);
        open.onerror = () => reject(open.error);
      });
      const read = (key: string) =>
        new Promise<unknown>((resolve, reject) => {
          const tx = db.transaction('asyncStorage', 'readwrite');
          const store = tx.objectStore('asyncStorage');
          store.put('http://localhost:5006', 'server-url');
          store.put('dark', 'theme');
          const req = store.get(key);
          req.onsuccess = () => resolve(req.result);
          req.onerror = () => reject(req.error);
        });
      expect(await read('server-url')).toBe('http://bloud.local/embed/actual-budget');
      expect(await read('theme')).toBe('dark');
    } finally {
      proto.get = originalGet;
    }
  });
});

describe('hasIntercepts and messages', () => {
  it('tells empty configs apart', () => {
    expect(hasIntercepts(null)).toBe(false);
    expect(hasIntercepts({ localStorage: { intercepts: [] } })).toBe(false);
    expect(hasIntercepts(actual)).toBe(true);
  });

  it('accepts well-formed shell messages and rejects the rest', () => {
    expect(parseShellMessage({ type: 'SET_ACTIVE_APP', appName: 'radarr', needsRewrite: true })).toEqual({
      type: 'SET_ACTIVE_APP',
      appName: 'radarr',
      needsRewrite: true,
    });
    expect(parseShellMessage({ type: 'SET_ACTIVE_APP', appName: null })).toMatchObject({ appName: null });
    expect(parseShellMessage({ type: 'SET_ACTIVE_APP', appName: 3 })).toBeNull();
    expect(parseShellMessage({ type: 'SET_INTERCEPTS', appName: 'a', config: actual })).toMatchObject({ config: actual });
    expect(parseShellMessage({ type: 'NOPE' })).toBeNull();
    expect(parseShellMessage('SET_ACTIVE_APP')).toBeNull();
  });
});
