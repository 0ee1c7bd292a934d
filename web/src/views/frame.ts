import type { ResolvedBootstrap } from '../bootstrap';
import { h } from '../dom';
import type { Route } from '../routes';
import type { TabHost } from '../tabs';
import type { Ctx, View } from './common';

/**
 * `/apps/<app>/<rest>`: the app in its tab (tabs.ts keeps one iframe per open app at
 * `/embed/<app>/<rest>`, the shell URL following the active one wherever it goes inside the app's
 * namespace). This view only tells the tab host which app the route names.
 */
export function frameView(_ctx: Ctx, host: TabHost, app: string, rest: string): View {
  host.show(app, rest);
  const heading = h('h1', { class: 'sr-only' }, app);
  return {
    el: h('section', { class: 'frame-page' }, heading),
    title: app,
    update(route: Route): boolean {
      if (route.name !== 'app') return false;
      heading.textContent = route.app;
      host.show(route.app, route.rest);
      return true;
    },
    cleanup() {
      host.hide();
    },
  };
}

/**
 * `bootstrap.indexedDB.writes`: values the app expects in its own database (same origin, so the
 * shell can write them). Only into databases and stores that already exist: creating the database
 * here would make the app skip its own schema upgrade.
 */
export async function writeBootstrap(writes: ResolvedBootstrap['writes']): Promise<void> {
  if (writes.length === 0 || typeof indexedDB === 'undefined' || typeof indexedDB.databases !== 'function') return;
  let existing: Set<string>;
  try {
    existing = new Set((await indexedDB.databases()).map((d) => d.name ?? ''));
  } catch {
    return;
  }
  for (const w of writes) {
    if (!existing.has(w.database)) continue;
    await new Promise<void>((resolve) => {
      const req = indexedDB.open(w.database);
      req.onerror = () => resolve();
      req.onsuccess = () => {
        const db = req.result;
        try {
          if (db.objectStoreNames.contains(w.store)) {
            const tx = db.transaction(w.store, 'readwrite');
            tx.objectStore(w.store).put(w.value, w.key);
            tx.oncomplete = tx.onerror = tx.onabort = () => {
              db.close();
              resolve();
            };
            return;
          }
        } catch (err) {
          console.warn('[bloud] bootstrap write failed:', err);
        }
        db.close();
        resolve();
      };
    });
  }
}
