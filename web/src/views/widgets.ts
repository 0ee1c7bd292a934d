/**
 * Home widgets: CPU, memory, disk and (when the machine has a sensor) temperature, live from
 * `/api/system/status/stream`, each with a meter, a level and a plain-language hint past its
 * threshold. Used by the home view (one line there) and the system page.
 */
import { h } from '../dom';
import { streamSse } from '../sse';
import { SYSTEM_ENDPOINTS } from '../systemApi';
import { parseStatus, readings, type SystemStatus } from '../systemHealth';

const LEVEL_TEXT = { ok: 'OK', warn: 'Attention', critical: 'Action needed' } as const;

function widget(r: ReturnType<typeof readings>[number]): HTMLElement {
  const labelId = `widget-${r.key}-label`;
  return h(
    'li',
    { class: `widget widget-${r.level}`, 'data-widget': r.key },
    h('span', { class: 'widget-label', id: labelId }, r.label),
    h('span', { class: 'widget-value' }, r.value),
    h('meter', { min: 0, max: 100, low: 70, high: 85, optimum: 0, value: Math.round(r.percent), 'aria-labelledby': labelId }),
    h('span', { class: 'widget-level' }, LEVEL_TEXT[r.level]),
    r.hint === null ? null : h('span', { class: 'widget-hint' }, r.hint),
  );
}

/** The widgets, updating until `signal` aborts. `link`: a "details" link to the system page. */
export function systemWidgets(signal: AbortSignal, opts: { link?: boolean } = {}): HTMLElement {
  const list = h('ul', { class: 'widgets', role: 'list' }, h('li', { class: 'muted' }, 'Reading system status…'));
  const state = h('p', { class: 'muted small', role: 'status' });
  let last = '';
  const render = (s: SystemStatus) => {
    const items = readings(s).map(widget);
    // Same numbers, same DOM: no flicker and no repeated announcements.
    const key = JSON.stringify(s);
    if (key === last) return;
    last = key;
    list.replaceChildren(...items);
  };
  void streamSse(
    SYSTEM_ENDPOINTS.statusStream,
    {
      onEvent: (ev) => {
        const s = parseStatus(ev.data);
        if (s !== null) render(s);
      },
      onState: (s, detail) => {
        state.textContent = s === 'reconnecting' ? `System status interrupted (${detail ?? 'unknown'}), retrying…` : '';
      },
    },
    { signal },
  );
  return h(
    'section',
    { class: 'system-widgets', 'aria-labelledby': 'system-widgets-title' },
    h('div', { class: 'page-head' }, h('h2', { id: 'system-widgets-title' }, 'System'), opts.link ? h('a', { href: '/system', class: 'small' }, 'Details') : null),
    list,
    state,
  );
}
