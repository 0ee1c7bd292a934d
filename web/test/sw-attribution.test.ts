import { IDBFactory } from 'fake-indexeddb';
import { describe, expect, it } from 'vitest';
import { Attribution } from '../src/sw/attribution';
import { decide } from '../src/sw/decide';
import { IdbPersist, MemoryPersist } from '../src/sw/persist';

const O = 'http://bloud.local';

/** A worker "process": a fresh in-memory Attribution over the same IndexedDB, like after a restart. */
function boot(factory: IDBFactory): { attribution: Attribution; persist: IdbPersist } {
  const persist = new IdbPersist(factory);
  return { attribution: new Attribution(persist), persist };
}

describe('attribution persistence', () => {
  it('a client registered before a restart is still attributed after it', async () => {
    const factory = new IDBFactory();
    const first = boot(factory);
    await first.attribution.register('client-radarr', 'radarr');
    await first.attribution.setActive('radarr', 'shell-1');
    await first.attribution.setSettings('miniflux', { needsRewrite: false });
    first.persist.close();

    const second = boot(factory);
    expect(await second.attribution.clientApp('client-radarr')).toBe('radarr');
    expect(await second.attribution.getActive()).toEqual({ app: 'radarr', shellClientId: 'shell-1' });
    expect((await second.attribution.getSettings('miniflux')).needsRewrite).toBe(false);
    expect((await second.attribution.getSettings('radarr')).needsRewrite).toBe(true);

    // The upstream bug: Radarr's /api/v3 calls went to the shell once the map was lost.
    const decision = decide(
      { url: O + '/api/v3/queue', method: 'GET', mode: 'cors', destination: '', referrer: '' },
      O,
      { clientApp: await second.attribution.clientApp('client-radarr'), clientIsShell: false, activeApp: null },
      { needsRewrite: (a) => second.attribution.needsRewriteCached(a) },
    );
    expect(decision).toMatchObject({ action: 'fetch', url: '/embed/radarr/api/v3/queue' });
  });

  it('the same scenario without persistence loses the client (what the store prevents)', async () => {
    const before = new Attribution(new MemoryPersist());
    await before.register('client-radarr', 'radarr');
    const after = new Attribution(new MemoryPersist());
    expect(await after.clientApp('client-radarr')).toBeNull();
  });

  it('forgetting and pruning remove clients durably', async () => {
    const factory = new IDBFactory();
    let clock = 1_000_000;
    const persist = new IdbPersist(factory);
    const first = new Attribution(persist, undefined, () => clock);
    await first.register('a', 'radarr');
    await first.register('b', 'sonarr');
    await first.register('c', 'jellyfin');
    await first.forget('a');
    // 'c' was registered a moment ago: its navigation may not have created the client yet.
    expect(await first.prune(new Set(['b']), 60_000)).toBe(0);
    clock += 61_000;
    await first.register('d', 'radarr');
    expect(await first.prune(new Set(['b']), 60_000)).toBe(1);
    persist.close();

    const second = boot(factory);
    expect(await second.attribution.clientApp('a')).toBeNull();
    expect(await second.attribution.clientApp('b')).toBe('sonarr');
    expect(await second.attribution.clientApp('c')).toBeNull();
    expect(await second.attribution.clientApp('d')).toBe('radarr');
  });

  it('re-registering a client moves it to the new app', async () => {
    const factory = new IDBFactory();
    const first = boot(factory);
    await first.attribution.register('x', 'radarr');
    await first.attribution.register('x', 'sonarr');
    first.persist.close();
    expect(await boot(factory).attribution.clientApp('x')).toBe('sonarr');
  });

  it('keeps working from memory when the store fails, and reports it', async () => {
    const errors: string[] = [];
    const broken = {
      get: () => Promise.reject(new Error('disk gone')),
      put: () => Promise.reject(new Error('disk gone')),
      delete: () => Promise.reject(new Error('disk gone')),
      keys: () => Promise.reject(new Error('disk gone')),
    };
    const a = new Attribution(broken, (what) => errors.push(what));
    await a.register('x', 'radarr');
    expect(await a.clientApp('x')).toBe('radarr');
    expect(await a.clientApp('y')).toBeNull();
    expect(errors).toContain('persisting worker state');
    expect(errors.some((e) => e.startsWith('reading clients/y'))).toBe(true);
  });

  it('ignores empty client ids (navigations report none)', async () => {
    const a = new Attribution(new MemoryPersist());
    await a.register('', 'radarr');
    expect(await a.clientApp('')).toBeNull();
  });
});
