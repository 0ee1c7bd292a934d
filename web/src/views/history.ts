/**
 * History and rollback: the system's generations (newest first) with the apps each had, and a
 * "Roll back" button per earlier generation. It asks for confirmation (what will be removed and
 * what comes back), then the password (step-up), queues the rollback and shows the live log;
 * the list is reloaded when it completes.
 */
import { ENDPOINTS } from '../api';
import { clear, h } from '../dom';
import { parseLogEvent } from '../progress';
import { streamSse } from '../sse';
import { systemApi } from '../systemApi';
import { rollbackDiff, type Generation } from '../systemHealth';
import { errorBox, loading, messageOf, type Ctx, type View } from './common';

const MAX_LOG_LINES = 5000;

function when(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

/** A modal asking to confirm; resolves true on "Roll back". */
function confirmRollback(target: Generation, current: Generation | undefined): Promise<boolean> {
  const { removed, added } = rollbackDiff(current, target);
  const titleId = `rollback-${target.number}`;
  const yes = h('button', { type: 'submit', class: 'primary danger' }, `Roll back to generation ${target.number}`);
  const no = h('button', { type: 'button' }, 'Cancel');
  const form = h(
    'form',
    {},
    h('h2', { id: titleId }, `Roll back to generation ${target.number}?`),
    h('p', {}, `The system switches back to how it was on ${when(target.createdAt)}.`),
    removed.length ? h('p', {}, h('strong', {}, 'Removed: '), removed.join(', '), '. Their data stays on the disk.') : null,
    added.length ? h('p', {}, h('strong', {}, 'Back: '), added.join(', '), '.') : null,
    !removed.length && !added.length ? h('p', {}, 'The same apps as now.') : null,
    h('div', { class: 'actions' }, no, yes),
  );
  const dialog = h('dialog', { 'aria-labelledby': titleId, class: 'confirm' }, form);
  document.body.append(dialog);
  return new Promise((resolve) => {
    let ok = false;
    dialog.addEventListener('close', () => {
      dialog.remove();
      resolve(ok);
    });
    no.addEventListener('click', () => dialog.close());
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      ok = true;
      dialog.close();
    });
    dialog.showModal();
    no.focus();
  });
}

export function historyView(ctx: Ctx): View {
  const ctrl = new AbortController();
  const list = h('div', {}, loading());
  const status = h('p', { class: 'phase', role: 'status' });
  const result = h('div', {});
  const logWrap = h('div', { hidden: true });
  const log = h('pre', { class: 'log', role: 'log', 'aria-label': 'Rollback log', tabindex: 0 });
  logWrap.append(h('h2', {}, 'Rollback log'), log);
  let busy = false;
  let lines = 0;
  let following: AbortController | null = null;

  const appendLines = (text: string[], cls?: string) => {
    for (const line of text) {
      log.append(h('span', cls ? { class: cls } : {}, line + '\n'));
      lines += 1;
      if (lines > MAX_LOG_LINES && log.firstChild) {
        log.firstChild.remove();
        lines -= 1;
      }
    }
    log.scrollTop = log.scrollHeight;
  };

  const render = (gens: Generation[]) => {
    clear(list);
    if (gens.length === 0) {
      list.append(h('p', { class: 'muted' }, 'No generations yet: each install or removal makes one.'));
      return;
    }
    const current = gens.find((g) => g.current);
    list.append(
      h(
        'ol',
        { class: 'generations', role: 'list' },
        gens.map((g) =>
          h(
            'li',
            { class: g.current ? 'generation current' : 'generation', 'data-generation': g.number },
            h(
              'div',
              { class: 'generation-head' },
              h('h2', { class: 'generation-title' }, `Generation ${g.number}`),
              g.current ? h('span', { class: 'badge badge-running' }, 'Running now') : null,
              h('span', { class: 'muted small' }, when(g.createdAt)),
            ),
            g.summary ? h('p', { class: 'small' }, g.summary) : null,
            h(
              'p',
              { class: 'generation-apps' },
              g.apps === null ? 'Apps unknown: not made by Bloud.' : g.apps.length === 0 ? 'No apps.' : `Apps: ${g.apps.map((a) => a.displayName || a.name).join(', ')}`,
            ),
            !g.current && g.apps !== null
              ? h(
                  'button',
                  {
                    type: 'button',
                    class: 'small',
                    'aria-label': `Roll back to generation ${g.number}`,
                    onclick: () => void start(g, current),
                  },
                  'Roll back',
                )
              : null,
          ),
        ),
      ),
    );
  };

  const load = async () => {
    try {
      const v = await systemApi.versions();
      if (!ctrl.signal.aborted) render(v.generations ?? []);
    } catch (err) {
      if (ctrl.signal.aborted) return;
      clear(list);
      list.append(errorBox(messageOf(err)));
    }
  };

  const start = async (target: Generation, current: Generation | undefined) => {
    if (busy) return;
    if (!(await confirmRollback(target, current))) return;
    busy = true;
    clear(result);
    log.replaceChildren();
    lines = 0;
    logWrap.hidden = false;
    status.className = 'phase phase-waiting';
    status.textContent = `Rolling back to generation ${target.number}…`;
    // The rebuild stream replays the latest rebuild first: lines before this rollback's own
    // `Running: … --rollback <n>` header are an older rebuild and are dropped.
    let ours = false;
    following?.abort();
    following = new AbortController();
    const stop = following;
    ctrl.signal.addEventListener('abort', () => stop.abort());
    void streamSse(
      ENDPOINTS.rebuildStream,
      {
        onEvent: (ev) => {
          const e = parseLogEvent(ev.data);
          if (e.lines.some((l) => l.startsWith('Running: ') && l.endsWith(`--rollback ${target.number}`))) {
            ours = true;
            log.replaceChildren();
            lines = 0;
          }
          if (!ours) return;
          appendLines(e.lines, e.kind === 'output' ? undefined : e.kind === 'error' || e.success === false ? 'log-error' : 'log-ok');
          if (e.kind === 'complete') stop.abort();
        },
      },
      { signal: stop.signal },
    );
    try {
      const r = await systemApi.rollback(target.number, true);
      const res = r as { success?: boolean; error?: string; generationInfo?: string };
      if (res.success === true) {
        status.className = 'phase phase-done';
        status.textContent = res.generationInfo ?? `Rolled back to generation ${target.number}.`;
        ctx.announce(status.textContent);
      } else {
        status.className = 'phase phase-failed';
        status.textContent = 'Rollback failed';
        result.append(errorBox(`Rollback to generation ${target.number} failed: ${res.error ?? 'no reason given'}`));
      }
    } catch (err) {
      status.className = 'phase phase-failed';
      status.textContent = 'Rollback not started';
      result.append(errorBox(messageOf(err)));
    } finally {
      busy = false;
      void load();
    }
  };

  void load();
  const el = h(
    'section',
    {},
    h('div', { class: 'page-head' }, h('h1', {}, 'History'), h('a', { href: '/system', class: 'button' }, 'System')),
    h('p', { class: 'muted' }, 'Every install or removal makes a new generation of the system. Rolling back switches to an earlier one: its apps come back, apps added since are removed (their data is kept).'),
    status,
    result,
    logWrap,
    list,
  );
  return { el, title: 'History', cleanup: () => ctrl.abort() };
}
