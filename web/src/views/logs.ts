import { appEndpoint } from '../api';
import { h } from '../dom';
import { highlightParts, LogBuffer, visibleRange } from '../logview';
import { streamSse } from '../sse';

/** Fixed row height (px): what makes the list virtual. Matches `.log-row` in styles.css. */
const ROW = 18;

/**
 * An app's log in a dialog: the agent's `/api/apps/<n>/logs` SSE (last lines, then live), drawn
 * as a virtual list (only the rows in view exist in the DOM, so 100,000 lines scroll like 100),
 * with search, follow and download.
 */
export function openLogs(app: string, label: string): void {
  const buf = new LogBuffer();
  const ctrl = new AbortController();
  const id = `logs-${Math.random().toString(36).slice(2)}`;

  const search = h('input', { type: 'search', id: `${id}-q`, autocomplete: 'off', placeholder: 'Text in the line' });
  const follow = h('input', { type: 'checkbox', id: `${id}-follow`, checked: true });
  const state = h('span', { class: 'muted small' }, 'Connecting…');
  const counts = h('span', { class: 'small log-count', role: 'status' });
  const rows = h('div', { class: 'log-rows' });
  const sizer = h('div', { class: 'log-sizer' }, rows);
  const viewport = h('div', { class: 'log-view', tabindex: 0, role: 'region', 'aria-label': `Log lines of ${label}` }, sizer);
  const download = h('button', { type: 'button', class: 'small' }, 'Download');
  const close = h('button', { type: 'button', class: 'small' }, 'Close');

  const dialog = h(
    'dialog',
    { class: 'logs-dialog', 'aria-labelledby': `${id}-h` },
    h('div', { class: 'logs-head' }, h('h2', { id: `${id}-h` }, `Logs of ${label}`), state, close),
    h(
      'div',
      { class: 'logs-tools' },
      h('label', { for: search.id }, 'Search '),
      search,
      h('span', { class: 'field-inline' }, follow, h('label', { for: follow.id }, ' Follow new lines')),
      download,
      counts,
    ),
    viewport,
  );

  let scheduled = false;
  let query = '';
  const draw = () => {
    scheduled = false;
    const n = buf.rowCount;
    sizer.style.height = `${n * ROW}px`;
    if (follow.checked) viewport.scrollTop = viewport.scrollHeight;
    const { first, end } = visibleRange(viewport.scrollTop, viewport.clientHeight || 400, ROW, n);
    rows.style.transform = `translateY(${first * ROW}px)`;
    const want = end - first;
    while (rows.childElementCount > want) rows.lastElementChild?.remove();
    while (rows.childElementCount < want) rows.append(h('div', { class: 'log-row' }));
    for (let r = first; r < end; r++) {
      const el = rows.children[r - first] as HTMLElement;
      const text = buf.row(r);
      if (query === '') {
        if (el.textContent !== text || el.childElementCount > 0) el.textContent = text;
      } else {
        el.replaceChildren(...highlightParts(text, query).map((p) => (p.match ? h('mark', {}, p.text) : p.text)));
      }
    }
    const total = buf.lines.length.toLocaleString('en');
    counts.textContent = buf.filtering ? `${buf.rowCount.toLocaleString('en')} of ${total} lines match` : `${total} lines`;
  };
  const schedule = () => {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(draw);
  };

  viewport.addEventListener('scroll', () => {
    // Scrolling up stops following; reaching the bottom again resumes it.
    follow.checked = viewport.scrollTop + viewport.clientHeight >= viewport.scrollHeight - ROW;
    schedule();
  });
  follow.addEventListener('change', schedule);
  search.addEventListener('input', () => {
    query = search.value;
    buf.setQuery(query);
    schedule();
  });
  download.addEventListener('click', () => {
    const url = URL.createObjectURL(new Blob([buf.text()], { type: 'text/plain' }));
    const a = h('a', { href: url, download: `${app}-logs.txt` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  });
  close.addEventListener('click', () => dialog.close());
  dialog.addEventListener('close', () => {
    ctrl.abort();
    dialog.remove();
  });

  let opened = 0;
  void streamSse(
    appEndpoint.logs(app),
    {
      onEvent: (ev) => {
        buf.push(ev.data);
        schedule();
      },
      onState: (s, detail) => {
        if (s === 'open') {
          // The agent sends its last lines again on every connection.
          if (opened++ > 0) buf.push('— reconnected; the lines below repeat the most recent ones —');
          state.textContent = 'Live';
        } else if (s === 'reconnecting') state.textContent = `Interrupted (${detail ?? 'unknown'}), retrying…`;
        else if (s === 'unauthorized') state.textContent = 'Signed out';
        schedule();
      },
    },
    { signal: ctrl.signal },
  );

  document.body.append(dialog);
  dialog.showModal();
  search.focus();
  schedule();
}

/**
 * The app's most recent log lines (what the agent sends first on the logs stream), for error
 * messages: read until the stream is quiet for a moment or `waitMs` passed.
 */
export async function lastLogLines(app: string, max = 20, waitMs = 2500): Promise<string[]> {
  const lines: string[] = [];
  const ctrl = new AbortController();
  let quiet: ReturnType<typeof setTimeout> | undefined;
  const stop = () => ctrl.abort();
  const overall = setTimeout(stop, waitMs);
  await streamSse(
    appEndpoint.logs(app),
    {
      onEvent: (ev) => {
        lines.push(ev.data);
        clearTimeout(quiet);
        quiet = setTimeout(stop, 300);
      },
      onState: (s) => {
        // One connection is enough: no retries for an error message.
        if (s !== 'open') stop();
        else quiet = setTimeout(stop, 800);
      },
    },
    { signal: ctrl.signal },
  );
  clearTimeout(overall);
  clearTimeout(quiet);
  return lines.slice(-max);
}
