import { api, ENDPOINTS } from '../api';
import { clear, h } from '../dom';
import { parseAppsSnapshot } from '../progress';
import { shellAppPath } from '../routes';
import { streamSse } from '../sse';
import { isAdmin } from '../stepup';
import type { InstalledApp } from '../types';
import { appMenuButton } from './appmenu';
import { appIcon, errorBox, loading, messageOf, statusBadge, type Ctx, type View } from './common';

/** Where a tile leads: running apps open, apps in flight show their progress. */
export function tileTarget(app: InstalledApp): string {
  if (app.status === 'installing' || app.status === 'starting') return `/install/${encodeURIComponent(app.name)}`;
  if (app.status === 'uninstalling') return `/install/${encodeURIComponent(app.name)}?op=uninstall`;
  return shellAppPath(app.name);
}

export function homeView(ctx: Ctx): View {
  const list = h('div', { class: 'tiles-wrap' }, loading());
  const live = h('p', { class: 'muted small', role: 'status' });
  const ctrl = new AbortController();

  const render = (apps: InstalledApp[]) => {
    clear(list);
    const visible = apps.filter((a) => !a.is_system).sort((a, b) => (a.display_name || a.name).localeCompare(b.display_name || b.name));
    if (visible.length === 0) {
      list.append(
        isAdmin(ctx.user)
          ? h('div', { class: 'empty' }, h('p', {}, 'No apps installed yet.'), h('a', { href: '/catalog', class: 'button primary' }, 'Browse the catalog'))
          : h('div', { class: 'empty' }, h('p', {}, 'No apps for you yet.'), h('p', { class: 'muted' }, 'An administrator of this Bloud chooses which apps you can open.')),
      );
      return;
    }
    list.append(
      h(
        'ul',
        { class: 'tiles', role: 'list' },
        visible.map((a) =>
          h(
            'li',
            { class: 'tile-item' },
            h(
              'a',
              { href: tileTarget(a), class: 'tile', 'aria-label': `${a.display_name || a.name}, ${a.status}` },
              appIcon(a.name, a.display_name),
              h('span', { class: 'tile-name' }, a.display_name || a.name),
              statusBadge(a.status),
            ),
            appMenuButton(ctx, { name: a.name, displayName: a.display_name || a.name, status: a.status }),
          ),
        ),
      ),
    );
  };

  void api
    .installed()
    .then(render)
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

  const el = h('section', {}, h('div', { class: 'page-head' }, h('h1', {}, 'Home'), isAdmin(ctx.user) ? h('a', { href: '/catalog', class: 'button' }, 'Add apps') : null), live, list);
  return { el, title: 'Home', cleanup: () => ctrl.abort() };
}
