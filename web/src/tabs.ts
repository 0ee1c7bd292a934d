/**
 * Open apps as tabs: every opened app keeps its iframe (hidden, never moved or destroyed) until
 * its tab is closed or evicted, so forms, scroll and players survive switching. A strip lists the
 * open apps; the active tab's frame drives the shell URL, as a single frame did before.
 *
 * Keyboard: Alt+Shift+1…6 opens the tab at that position, Alt+Shift+←/→ the previous/next one
 * (also while focus is inside an app: the shell listens in each same-origin frame too). The
 * strip's links, menu and close buttons are ordinary focusable controls.
 */
import { api, ApiError } from './api';
import { needsRewrite, resolveBootstrap, type ResolvedBootstrap } from './bootstrap';
import { clear, h } from './dom';
import { embedSrc, shellAppPath, shellPathForFrame } from './routes';
import { setActiveApp, setIntercepts, waitForController } from './swClient';
import { TAB_LIMIT, TabSet } from './tabset';
import type { CatalogApp } from './types';
import { APP_REMOVED, APP_RENAMED, appMenuButton } from './views/appmenu';
import { errorBox, loading, messageOf, type Ctx } from './views/common';
import { writeBootstrap } from './views/frame';

export const TAB_SHORTCUT_HELP = `Alt+Shift+1…${TAB_LIMIT} or Alt+Shift+←/→ switch apps`;

interface Tab {
  app: string;
  label: string;
  meta: CatalogApp | null;
  wrap: HTMLElement;
  iframe: HTMLIFrameElement | null;
  /** The shell path this tab is at (`/apps/<app>/<rest>`). */
  path: string;
  disposed: boolean;
}

export interface TabHost {
  /** The strip listing open apps (shown on every page while any is open). */
  strip: HTMLElement;
  /** Where the frames live; only shown on an app route. */
  frames: HTMLElement;
  /** Shows `app` (opening a tab if needed) at `rest`; `rest === ''` on an open tab just switches. */
  show(app: string, rest: string): void;
  /** Leaves the app route: frames stay alive, hidden. */
  hide(): void;
  close(app: string): void;
  closeAll(): void;
  /** The apps open, in strip order. */
  openApps(): readonly string[];
}

export function createTabHost(ctx: Ctx, limit = TAB_LIMIT): TabHost {
  const set = new TabSet(limit);
  const tabs = new Map<string, Tab>();
  let visible = false;

  const list = h('ul', { class: 'tab-list', role: 'list' });
  const count = h('span', { class: 'tab-count' });
  const strip = h(
    'nav',
    { class: 'tab-strip', 'aria-label': 'Open apps', hidden: true },
    list,
    h('p', { class: 'tab-note muted small', id: 'tab-note' }, count, ` Up to ${limit} apps stay open; opening another closes the one used least recently. ${TAB_SHORTCUT_HELP}.`),
  );
  const frames = h('div', { class: 'tab-frames', hidden: true });

  const activeTab = (): Tab | undefined => {
    const a = set.active;
    return a === null ? undefined : tabs.get(a);
  };

  const renderStrip = () => {
    // Re-rendering must not drop keyboard focus: remember which control of which tab had it.
    const focused = document.activeElement instanceof HTMLElement && list.contains(document.activeElement) ? document.activeElement : null;
    const focusApp = focused?.closest<HTMLElement>('li.tab')?.dataset.app;
    const focusKind = focused === null ? null : focused.classList.contains('tab-close') ? '.tab-close' : focused.classList.contains('menu-button') ? '.menu-button' : '.tab-link';
    clear(list);
    strip.hidden = set.apps.length === 0;
    count.textContent = `${set.apps.length} of ${limit} open.`;
    set.apps.forEach((name, i) => {
      const tab = tabs.get(name);
      if (!tab) return;
      const current = visible && set.active === name;
      list.append(
        h(
          'li',
          { class: current ? 'tab current' : 'tab', 'data-app': name },
          h('a', { href: tab.path, class: 'tab-link', 'aria-current': current ? 'page' : null, 'aria-keyshortcuts': i < 9 ? `Alt+Shift+${i + 1}` : null }, tab.label),
          appMenuButton(ctx, { name, displayName: tab.label }),
          h('button', { type: 'button', class: 'tab-close small', 'aria-label': `Close ${tab.label}`, title: `Close ${tab.label}`, onclick: () => close(name) }, h('span', { 'aria-hidden': 'true' }, '×')),
        ),
      );
    });
    if (focusApp !== undefined && focusKind !== null) {
      const again = [...list.querySelectorAll<HTMLElement>('li.tab')].find((li) => li.dataset.app === focusApp)?.querySelector<HTMLElement>(focusKind);
      again?.focus();
    }
  };

  const rename = (app: string, label: string) => {
    const tab = tabs.get(app);
    if (!tab) return;
    tab.label = label;
    if (tab.iframe) tab.iframe.title = label;
    renderStrip();
  };

  const frameLocation = (tab: Tab): string | null => {
    try {
      const loc = tab.iframe?.contentWindow?.location;
      if (!loc) return null;
      void loc.pathname; // throws on another origin
      return shellPathForFrame(tab.app, loc);
    } catch {
      return null;
    }
  };

  const syncShellUrl = (tab: Tab) => {
    const path = frameLocation(tab);
    if (path === null) return;
    if (path !== tab.path) {
      tab.path = path;
      renderStrip();
    }
    if (visible && set.active === tab.app && path !== location.pathname + location.search + location.hash) ctx.replaceUrl(path);
  };

  const setTitle = (tab: Tab) => {
    let t = '';
    try {
      t = tab.iframe?.contentWindow?.document.title ?? '';
    } catch {
      // another origin
    }
    document.title = `${t || tab.label} · Bloud`;
  };

  const switchTo = (app: string | null) => {
    const tab = app === null ? undefined : tabs.get(app);
    if (tab) ctx.navigate(tab.path);
  };

  const onKey = (ev: KeyboardEvent) => {
    if (!ev.altKey || !ev.shiftKey || ev.ctrlKey || ev.metaKey) return;
    let target: string | null = null;
    const digit = /^Digit([1-9])$/.exec(ev.code);
    if (digit) target = set.apps[Number(digit[1]) - 1] ?? null;
    else if (ev.key === 'ArrowRight') target = set.neighbour(visible ? set.active : null, 1);
    else if (ev.key === 'ArrowLeft') target = set.neighbour(visible ? set.active : null, -1);
    else return;
    if (target === null) return;
    ev.preventDefault();
    switchTo(target);
  };
  document.addEventListener('keydown', onKey);
  // From any app menu (tiles and tabs alike): an app being uninstalled loses its tab.
  document.addEventListener(APP_REMOVED, (ev) => {
    const app = (ev as CustomEvent<unknown>).detail;
    if (typeof app === 'string') close(app, false);
  });
  document.addEventListener(APP_RENAMED, (ev) => {
    const d = (ev as CustomEvent<{ app?: unknown; displayName?: unknown }>).detail;
    if (typeof d.app === 'string' && typeof d.displayName === 'string') rename(d.app, d.displayName);
  });

  const hookFrame = (tab: Tab) => {
    const win = tab.iframe?.contentWindow as (Window & typeof globalThis) | null | undefined;
    if (!win) return;
    try {
      // Single-page apps move with pushState and never fire `load`; follow them too.
      const hist = win.history;
      for (const name of ['pushState', 'replaceState'] as const) {
        const original = hist[name];
        hist[name] = function (this: History, ...args: Parameters<History['pushState']>) {
          const r = original.apply(this, args);
          syncShellUrl(tab);
          return r;
        };
      }
      win.addEventListener('popstate', () => syncShellUrl(tab));
      win.addEventListener('hashchange', () => syncShellUrl(tab));
      // Keys pressed inside the app go to its document, not the shell's.
      win.addEventListener('keydown', onKey);
    } catch {
      // another origin (an SSO page elsewhere): nothing to follow
    }
  };

  const openFrame = async (tab: Tab, rest: string) => {
    const holder = tab.wrap;
    try {
      tab.meta = await api.metadata(tab.app);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        holder.replaceChildren(errorBox(`${tab.app} is not in the catalog.`), h('a', { href: '/catalog', class: 'button' }, 'Browse the catalog'));
        return;
      }
      // Still open the app: the worker then uses its defaults.
      console.warn('[bloud] metadata unavailable:', messageOf(err));
    }
    if (tab.disposed) return;
    if (tab.meta) rename(tab.app, tab.meta.displayName);
    const boot: ResolvedBootstrap = tab.meta ? resolveBootstrap(tab.meta, location.origin) : { intercepts: null, writes: [] };
    // The worker must know the app before the iframe's first request reaches it.
    await waitForController();
    await setActiveApp(tab.app, tab.meta ? needsRewrite(tab.meta) : undefined);
    if (boot.intercepts) await setIntercepts(tab.app, boot.intercepts);
    await writeBootstrap(boot.writes);
    if (tab.disposed) return;
    const iframe = h('iframe', {
      src: embedSrc(tab.app, rest),
      title: tab.label,
      class: 'app-frame',
      allow: 'fullscreen; clipboard-read; clipboard-write; autoplay; picture-in-picture',
      allowfullscreen: true,
    });
    tab.iframe = iframe;
    iframe.addEventListener('load', () => {
      syncShellUrl(tab);
      hookFrame(tab);
      if (visible && set.active === tab.app) setTitle(tab);
    });
    holder.replaceChildren(iframe);
  };

  const close = (app: string, navigateAway = true) => {
    const tab = tabs.get(app);
    if (!tab) return;
    const wasShown = visible && set.active === app;
    tab.disposed = true;
    tab.wrap.remove();
    tabs.delete(app);
    set.close(app);
    renderStrip();
    if (wasShown && navigateAway) {
      const next = activeTab();
      ctx.navigate(next ? next.path : '/');
    }
  };

  const show = (app: string, rest: string) => {
    visible = true;
    frames.hidden = false;
    let tab = tabs.get(app);
    if (!tab) {
      tab = { app, label: app, meta: null, wrap: h('div', { class: 'tab-frame' }, loading(`Opening ${app}…`)), iframe: null, path: shellAppPath(app, rest), disposed: false };
      tabs.set(app, tab);
      frames.append(tab.wrap);
      const t = tab;
      void openFrame(t, rest).catch((err: unknown) => t.wrap.replaceChildren(errorBox(messageOf(err))));
    } else if (rest !== '') {
      const want = embedSrc(app, rest);
      let here: string | null = null;
      try {
        const loc = tab.iframe?.contentWindow?.location;
        if (loc) here = loc.pathname + loc.search + loc.hash;
      } catch {
        // another origin: navigate it back
      }
      if (tab.iframe && here !== want) tab.iframe.src = want;
      tab.path = shellAppPath(app, rest);
    } else if (tab.iframe) {
      // The app's plain address (a home tile) switches to the tab where it is.
      void setActiveApp(app, tab.meta ? needsRewrite(tab.meta) : undefined);
    }
    const evicted = set.open(app);
    for (const gone of evicted) {
      const label = tabs.get(gone)?.label ?? gone;
      close(gone);
      ctx.announce(`Closed ${label}: at most ${limit} apps stay open.`);
    }
    for (const t of tabs.values()) t.wrap.hidden = t.app !== app;
    if (tab.path !== location.pathname + location.search + location.hash) ctx.replaceUrl(tab.path);
    setTitle(tab);
    renderStrip();
  };

  const hide = () => {
    visible = false;
    frames.hidden = true;
    renderStrip();
    void setActiveApp(null);
  };

  return {
    strip,
    frames,
    show,
    hide,
    close,
    closeAll() {
      for (const app of [...set.apps]) close(app, false);
    },
    openApps: () => set.apps,
  };
}
