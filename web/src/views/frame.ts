import { api, ApiError } from '../api';
import { needsRewrite, resolveBootstrap, type ResolvedBootstrap } from '../bootstrap';
import { h } from '../dom';
import { embedSrc, shellPathForFrame, type Route } from '../routes';
import { setActiveApp, setIntercepts, waitForController } from '../swClient';
import type { CatalogApp } from '../types';
import { errorBox, loading, messageOf, type Ctx, type View } from './common';

/**
 * `/apps/<app>/<rest>`: the app in an iframe at `/embed/<app>/<rest>`, the shell URL following the
 * iframe wherever it goes inside the app's namespace.
 */
export function frameView(ctx: Ctx, app: string, rest: string): View {
  const heading = h('h1', { class: 'frame-title' }, app);
  const holder = h('div', { class: 'frame-holder' }, loading(`Opening ${app}…`));
  let iframe: HTMLIFrameElement | null = null;
  let disposed = false;

  const syncShellUrl = () => {
    const win = iframe?.contentWindow;
    if (!win) return;
    let loc: Location;
    try {
      loc = win.location;
      void loc.pathname; // throws if the frame is on another origin
    } catch {
      return;
    }
    const path = shellPathForFrame(app, loc);
    if (path !== null && path !== location.pathname + location.search + location.hash) ctx.replaceUrl(path);
  };

  const hookFrameHistory = () => {
    const win = iframe?.contentWindow as (Window & typeof globalThis) | null | undefined;
    if (!win) return;
    try {
      // Single-page apps move with pushState and never fire `load`; follow them too.
      const hist = win.history;
      for (const name of ['pushState', 'replaceState'] as const) {
        const original = hist[name];
        hist[name] = function (this: History, ...args: Parameters<History['pushState']>) {
          const r = original.apply(this, args);
          syncShellUrl();
          return r;
        };
      }
      win.addEventListener('popstate', syncShellUrl);
      win.addEventListener('hashchange', syncShellUrl);
      const title = () => {
        const t = win.document.title;
        if (t) document.title = `${t} · Bloud`;
      };
      title();
    } catch {
      // another origin (an SSO page elsewhere): nothing to follow
    }
  };

  const open = async () => {
    let meta: CatalogApp | null = null;
    try {
      meta = await api.metadata(app);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        holder.replaceChildren(errorBox(`${app} is not in the catalog.`), h('a', { href: '/catalog', class: 'button' }, 'Browse the catalog'));
        return;
      }
      // Still open the app: the worker then uses its defaults.
      console.warn('[bloud] metadata unavailable:', messageOf(err));
    }
    if (disposed) return;
    if (meta) heading.textContent = meta.displayName;
    const boot: ResolvedBootstrap = meta ? resolveBootstrap(meta, location.origin) : { intercepts: null, writes: [] };
    // The worker must know the app before the iframe's first request reaches it.
    await waitForController();
    await setActiveApp(app, meta ? needsRewrite(meta) : undefined);
    if (boot.intercepts) await setIntercepts(app, boot.intercepts);
    await writeBootstrap(boot.writes);
    if (disposed) return;

    iframe = h('iframe', {
      src: embedSrc(app, rest),
      title: meta?.displayName ?? app,
      class: 'app-frame',
      allow: 'fullscreen; clipboard-read; clipboard-write; autoplay; picture-in-picture',
      allowfullscreen: true,
    });
    iframe.addEventListener('load', () => {
      syncShellUrl();
      hookFrameHistory();
    });
    holder.replaceChildren(iframe);
  };
  void open().catch((err: unknown) => holder.replaceChildren(errorBox(messageOf(err))));

  const el = h(
    'section',
    { class: 'frame-page' },
    h('div', { class: 'frame-bar' }, h('a', { href: '/', class: 'button small' }, h('span', { 'aria-hidden': 'true' }, '← '), 'Home'), heading),
    holder,
  );

  return {
    el,
    title: app,
    update(route: Route): boolean {
      if (route.name !== 'app' || route.app !== app) return false;
      const want = embedSrc(app, route.rest);
      const win = iframe?.contentWindow;
      try {
        if (win && win.location.pathname + win.location.search + win.location.hash === want) return true;
      } catch {
        // other origin: navigate it back
      }
      if (iframe) iframe.src = want;
      return true;
    },
    cleanup() {
      disposed = true;
      void setActiveApp(null);
    },
  };
}

/**
 * `bootstrap.indexedDB.writes`: values the app expects in its own database (same origin, so the
 * shell can write them). Only into databases and stores that already exist: creating the database
 * here would make the app skip its own schema upgrade.
 */
async function writeBootstrap(writes: ResolvedBootstrap['writes']): Promise<void> {
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
