/**
 * The system page: the live widgets, then per app its memory and its storage, and the disk
 * holding the data directory. Administrators also get the link to the history.
 */
import { clear, h } from '../dom';
import { isAdmin } from '../stepup';
import { systemApi } from '../systemApi';
import { formatBytes, levelOf, THRESHOLDS, type AppUsage, type Storage } from '../systemHealth';
import { errorBox, loading, messageOf, type Ctx, type View } from './common';
import { systemWidgets } from './widgets';

const REFRESH_MS = 10_000;

function storageBlock(s: Storage): HTMLElement {
  const level = levelOf('disk', s.percentage);
  return h(
    'div',
    { class: `storage widget-${level}` },
    h('p', {}, `${formatBytes(s.used)} used of ${formatBytes(s.total)} (${formatBytes(s.free)} free) on the disk holding ${s.path}.`),
    level === 'ok' ? null : h('p', { class: 'widget-hint' }, THRESHOLDS.disk.hints[level]),
  );
}

function appTable(apps: AppUsage[], total: number | undefined): HTMLElement {
  if (apps.length === 0) return h('p', { class: 'muted' }, 'No apps installed.');
  const sorted = [...apps].sort((a, b) => b.storage - a.storage || a.name.localeCompare(b.name));
  return h(
    'table',
    { class: 'usage' },
    h('caption', { class: 'sr-only' }, 'Memory and storage per app'),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'App'), h('th', { scope: 'col' }, 'Memory'), h('th', { scope: 'col' }, 'Storage'))),
    h(
      'tbody',
      {},
      sorted.map((a) =>
        h(
          'tr',
          { 'data-app': a.name },
          h('th', { scope: 'row' }, a.displayName || a.name),
          h('td', {}, a.memory === null ? 'unknown' : formatBytes(a.memory)),
          h('td', {}, `${a.storagePartial ? 'at least ' : ''}${formatBytes(a.storage)}${total ? ` (${((a.storage / total) * 100).toFixed(1)}% of the disk)` : ''}`),
        ),
      ),
    ),
  );
}

export function systemView(ctx: Ctx): View {
  const ctrl = new AbortController();
  const admin = isAdmin(ctx.user);
  const disk = h('div', {}, loading());
  const apps = h('div', {}, admin ? loading() : h('p', { class: 'muted' }, 'Per-app use is shown to administrators.'));

  const refresh = async () => {
    try {
      const s = await systemApi.storage();
      clear(disk);
      disk.append(storageBlock(s));
      if (admin) {
        const list = await systemApi.apps();
        clear(apps);
        apps.append(appTable(list, s.total));
      }
    } catch (err) {
      if (ctrl.signal.aborted) return;
      clear(disk);
      disk.append(errorBox(messageOf(err)));
    }
  };
  void refresh();
  const timer = setInterval(() => void refresh(), REFRESH_MS);

  const el = h(
    'section',
    {},
    h('div', { class: 'page-head' }, h('h1', {}, 'System'), admin ? h('a', { href: '/system/history', class: 'button' }, 'History and rollback') : null),
    systemWidgets(ctrl.signal),
    h('h2', {}, 'Storage'),
    disk,
    h('h2', {}, 'Apps'),
    apps,
  );
  return {
    el,
    title: 'System',
    cleanup: () => {
      ctrl.abort();
      clearInterval(timer);
    },
  };
}
