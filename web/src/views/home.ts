import './home.css';
import { api, ENDPOINTS } from '../api';
import { clear, h } from '../dom';
import { applyOrder, layoutFor, storedOrder } from '../layout';
import { parseAppsSnapshot } from '../progress';
import { shellAppPath } from '../routes';
import { streamSse } from '../sse';
import { isAdmin } from '../stepup';
import type { GridElement, InstalledApp } from '../types';
import { appMenuButton } from './appmenu';
import { systemWidgets } from './widgets';
import { appIcon, errorBox, loading, messageOf, statusBadge, type Ctx, type View } from './common';
import { makeReorderable, REORDER_HINT } from './tileDrag';

/** Where a tile leads: running apps open, apps in flight show their progress. */
export function tileTarget(app: InstalledApp): string {
  if (app.status === 'installing' || app.status === 'starting') return `/install/${encodeURIComponent(app.name)}`;
  if (app.status === 'uninstalling') return `/install/${encodeURIComponent(app.name)}?op=uninstall`;
  return shellAppPath(app.name);
}

const HINT_ID = 'home-reorder-hint';

/**
 * One home tile: a list item named by `data-app` (the reordering reads it) holding the link.
 * Extra tile parts (menus, badges) go in here so every tile gets them.
 */
export function renderTile(app: InstalledApp, ctx: Ctx): HTMLLIElement {
  const name = app.display_name || app.name;
  return h(
    'li',
    { 'data-app': app.name, class: 'tile-item' },
    h(
      'a',
      { href: tileTarget(app), class: 'tile', draggable: 'false', 'aria-describedby': HINT_ID },
      appIcon(app.name, app.display_name),
      // The link's name is its visible text ("Radarr, Running"): speech input users say what they see.
      h('span', { class: 'tile-name' }, name, h('span', { class: 'name-sep' }, ',')),
      statusBadge(app.status),
    ),
    appMenuButton(ctx, { name: app.name, displayName: name, status: app.status }),
  );
}

export function homeView(ctx: Ctx): View {
  const list = h('div', { class: 'tiles-wrap' }, loading());
  const live = h('p', { class: 'muted small', role: 'status' });
  const hint = h('p', { id: HINT_ID, class: 'muted small', hidden: true }, REORDER_HINT);
  const tiles = h('ul', { class: 'tiles', role: 'list', 'aria-label': 'Your apps' });
  const ctrl = new AbortController();
  let layout: GridElement[] = [];
  /** The person's arrangement (stored); apps not in it follow by name. */
  let order: string[] = [];
  /** What is on screen now. */
  let shown: string[] = [];
  let latest: InstalledApp[] | null = null;
  let saving = Promise.resolve();

  const reorder = makeReorderable(tiles, (next, moved) => {
    const changed = next.join('\n') !== shown.join('\n');
    order = next;
    shown = next;
    const item = latest?.find((a) => a.name === moved);
    if (item) ctx.announce(`${item.display_name || item.name}: position ${next.indexOf(moved) + 1} of ${next.length}.`);
    if (!changed) return;
    const body = layoutFor(order, layout);
    layout = body;
    // Saves run one after another so the last order is the one stored.
    saving = saving
      .then(() => api.saveLayout(body))
      .then(() => undefined)
      .catch((err: unknown) => ctx.announce(`The new order was not saved: ${messageOf(err)}`));
  });

  const render = (apps: InstalledApp[]) => {
    latest = apps;
    // A held tile stays where the person put it; the next update re-renders.
    if (reorder.dragging) return;
    const visible = apps.filter((a) => !a.is_system).sort((a, b) => (a.display_name || a.name).localeCompare(b.display_name || b.name));
    clear(list);
    if (visible.length === 0) {
      hint.hidden = true;
      list.append(
        isAdmin(ctx.user)
          ? h('div', { class: 'empty' }, h('p', {}, 'No apps installed yet.'), h('a', { href: '/catalog', class: 'button primary' }, 'Browse the catalog'))
          : h('div', { class: 'empty' }, h('p', {}, 'No apps for you yet.'), h('p', { class: 'muted' }, 'An administrator of this Bloud chooses which apps you can open.')),
      );
      return;
    }
    const byName = new Map(visible.map((a) => [a.name, a]));
    shown = applyOrder(
      visible.map((a) => a.name),
      order,
    );
    const focusedApp = (document.activeElement?.closest('li[data-app]') as HTMLElement | null)?.dataset.app;
    clear(tiles);
    for (const name of shown) {
      const app = byName.get(name);
      if (app) tiles.append(renderTile(app, ctx));
    }
    hint.hidden = visible.length < 2;
    list.append(tiles);
    // A live update must not throw the keyboard user's focus away.
    if (focusedApp) tiles.querySelector<HTMLElement>(`li[data-app="${CSS.escape(focusedApp)}"] a`)?.focus();
  };

  void Promise.all([api.installed(), api.layout().catch(() => [] as GridElement[])])
    .then(([apps, stored]) => {
      layout = stored;
      order = storedOrder(stored);
      render(apps);
    })
    .catch((err: unknown) => {
      clear(list);
      list.append(errorBox(messageOf(err)));
    });

  void streamSse(
    ENDPOINTS.appEvents,
    {
      onEvent: (ev) => {
        const apps = parseAppsSnapshot(ev.data);
        if (apps !== null) render(apps);
      },
      onState: (s, detail) => {
        live.textContent = s === 'reconnecting' ? `Live updates interrupted (${detail ?? 'unknown'}), retrying…` : '';
        if (s === 'unauthorized') ctx.navigate('/login?next=%2F', { replace: true });
      },
    },
    { signal: ctrl.signal },
  );

  const el = h('section', {}, h('div', { class: 'page-head' }, h('h1', {}, 'Home'), isAdmin(ctx.user) ? h('a', { href: '/catalog', class: 'button' }, 'Add apps') : null), live, hint, list, systemWidgets(ctrl.signal, { link: true }));
  return {
    el,
    title: 'Home',
    cleanup: () => {
      ctrl.abort();
      reorder.destroy();
    },
  };
}
