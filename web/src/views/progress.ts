import { ENDPOINTS } from '../api';
import { h } from '../dom';
import { pendingOp } from '../ops';
import { parseAppsSnapshot, parseLogEvent, phaseOf } from '../progress';
import { shellAppPath } from '../routes';
import { streamSse } from '../sse';
import type { InstalledApp } from '../types';
import { errorBox, messageOf, type Ctx, type View } from './common';

const MAX_LOG_LINES = 5000;

export function progressView(ctx: Ctx, app: string, op: 'install' | 'uninstall'): View {
  const ctrl = new AbortController();
  const verb = op === 'install' ? 'Installing' : 'Removing';
  const title = `${verb} ${app}`;
  const heading = h('h1', {}, title);
  const status = h('p', { class: 'phase phase-waiting', role: 'status' }, op === 'install' ? 'Queued' : 'Queued for removal');
  const next = h('div', { class: 'actions' });
  const result = h('div', {});
  const logState = h('p', { class: 'muted small' }, 'Connecting to the rebuild log…');
  const log = h('pre', { class: 'log', role: 'log', 'aria-label': 'Rebuild log', tabindex: 0 });
  let lines = 0;
  let everSeen = false;
  let lastPhase = '';

  const appendLines = (text: string[], cls?: string) => {
    const stick = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    for (const line of text) {
      const span = h('span', cls ? { class: cls } : {}, line + '\n');
      log.append(span);
      lines += 1;
      if (lines > MAX_LOG_LINES && log.firstChild) {
        log.firstChild.remove();
        lines -= 1;
      }
    }
    if (stick) log.scrollTop = log.scrollHeight;
  };

  const onSnapshot = (apps: InstalledApp[]) => {
    const row = apps.find((a) => a.name === app);
    if (row !== undefined) {
      everSeen = true;
      if (row.display_name) heading.textContent = `${verb} ${row.display_name}`;
    }
    const view = phaseOf(op, row, everSeen);
    status.textContent = view.label;
    status.className = `phase phase-${view.phase}`;
    if (view.phase !== lastPhase) {
      lastPhase = view.phase;
      next.replaceChildren();
      if (view.phase === 'done' && op === 'install') {
        next.append(h('a', { href: shellAppPath(app), class: 'button primary' }, `Open ${row?.display_name || app}`));
        ctx.announce(`${row?.display_name || app} is running.`);
      } else if (view.phase === 'done') {
        next.append(h('a', { href: '/', class: 'button' }, 'Back to home'));
        ctx.announce(`${app} was removed.`);
      } else if (view.phase === 'failed') {
        next.append(h('a', { href: '/catalog', class: 'button' }, 'Back to the catalog'));
      }
    }
  };

  void streamSse(
    ENDPOINTS.appEvents,
    {
      onEvent: (ev) => {
        const apps = parseAppsSnapshot(ev.data);
        if (apps !== null) onSnapshot(apps);
      },
      onState: (s) => {
        if (s === 'unauthorized') ctx.navigate(`/login?next=${encodeURIComponent(location.pathname + location.search)}`, { replace: true });
      },
    },
    { signal: ctrl.signal },
  );

  void streamSse(
    ENDPOINTS.rebuildStream,
    {
      onEvent: (ev) => {
        const e = parseLogEvent(ev.data);
        appendLines(e.lines, e.kind === 'output' ? undefined : e.kind === 'error' || e.success === false ? 'log-error' : 'log-ok');
      },
      onState: (s, detail) => {
        logState.textContent =
          s === 'open' ? 'Live rebuild log:' : s === 'reconnecting' ? `Rebuild log interrupted (${detail ?? 'unknown'}), reconnecting…` : '';
      },
    },
    { signal: ctrl.signal },
  );

  // The install/uninstall request itself, if this page started it.
  void pendingOp(app)
    ?.then(({ result: r }) => {
      if (ctrl.signal.aborted) return;
      if (!r.success) result.append(errorBox(`${op === 'install' ? 'Install' : 'Removal'} of ${app} failed: ${r.error ?? 'no reason given'}`));
    })
    .catch((err: unknown) => {
      if (!ctrl.signal.aborted) result.append(errorBox(messageOf(err)));
    });

  const el = h('section', {}, heading, status, result, next, h('h2', {}, 'System rebuild'), logState, log);
  return { el, title, cleanup: () => ctrl.abort() };
}
