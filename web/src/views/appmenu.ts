import { api } from '../api';
import { h } from '../dom';
import { isAdmin } from '../stepup';
import { modal, openRemove } from './catalog';
import { messageOf, type Ctx } from './common';
import { lastLogLines, openLogs } from './logs';

/** Document events for whoever shows the app elsewhere (tabs.ts): `detail` is the app name. */
export const APP_REMOVED = 'bloud:app-removed';
export const APP_RENAMED = 'bloud:app-renamed';

export interface MenuApp {
  name: string;
  displayName: string;
  /** The app's status where known (home tiles): an unhealthy app offers its error first. */
  status?: string;
}

const TROUBLE: Record<string, string> = {
  error: 'is not healthy (its health check fails, or a restart or removal failed)',
  failed: 'failed to install',
};

export interface MenuHooks {
  onRenamed?(displayName: string): void;
  /** The uninstall was confirmed and started. */
  onRemoved?(): void;
  /** The app was restarted. */
  onRestarted?(): void;
}

/**
 * The "⋯" menu of an app (home tiles and tabs): open in a new browser tab; for admins also logs,
 * rename, restart and uninstall. A WAI-ARIA menu button: Enter/Space/↓ open it on the first
 * item, ↑/↓/Home/End move, Escape closes it and returns focus to the button.
 */
export function appMenuButton(ctx: Ctx, app: MenuApp, hooks: MenuHooks = {}): HTMLElement {
  const id = `menu-${Math.random().toString(36).slice(2)}`;
  const button = h(
    'button',
    { type: 'button', class: 'menu-button small', 'aria-haspopup': 'menu', 'aria-expanded': 'false', 'aria-controls': id, 'aria-label': `Actions for ${app.displayName}`, title: `Actions for ${app.displayName}` },
    h('span', { 'aria-hidden': 'true' }, '⋯'),
  );
  const menu = h('ul', { class: 'menu', role: 'menu', id, 'aria-label': `Actions for ${app.displayName}`, hidden: true });
  const wrap = h('span', { class: 'menu-wrap' }, button, menu);

  const item = (label: string, run: () => void) =>
    h('li', { role: 'none' }, h('button', { type: 'button', role: 'menuitem', tabindex: -1, onclick: () => { hide(false); run(); } }, label));

  menu.append(
    h('li', { role: 'none' }, h('a', { role: 'menuitem', tabindex: -1, href: `/embed/${encodeURIComponent(app.name)}/`, target: '_blank', rel: 'noopener', onclick: () => hide(false) }, 'Open in a new browser tab')),
  );
  if (isAdmin(ctx.user)) {
    const trouble = app.status === undefined ? undefined : TROUBLE[app.status];
    if (trouble !== undefined) menu.append(item('What went wrong', () => void showAppError(app, `${app.displayName} ${trouble}.`)));
    menu.append(
      item('Logs', () => openLogs(app.name, app.displayName)),
      item('Rename…', () => void rename(ctx, app, hooks)),
      item('Restart', () => void restart(ctx, app, hooks)),
      item('Uninstall…', () =>
        void openRemove(ctx, app).then((started) => {
          if (!started) return;
          hooks.onRemoved?.();
          document.dispatchEvent(new CustomEvent<string>(APP_REMOVED, { detail: app.name }));
        }),
      ),
    );
  }

  const items = () => [...menu.querySelectorAll<HTMLElement>('[role="menuitem"]')];
  const onOutside = (ev: Event) => {
    if (!wrap.contains(ev.target as Node)) hide(false);
  };
  function show(focus: 'first' | 'last') {
    menu.hidden = false;
    button.setAttribute('aria-expanded', 'true');
    const list = items();
    (focus === 'first' ? list[0] : list.at(-1))?.focus();
    document.addEventListener('pointerdown', onOutside, true);
  }
  function hide(refocus: boolean) {
    if (menu.hidden) return;
    menu.hidden = true;
    button.setAttribute('aria-expanded', 'false');
    document.removeEventListener('pointerdown', onOutside, true);
    if (refocus) button.focus();
  }

  button.addEventListener('click', (ev) => {
    // The button may sit inside a link-like tile: it is its own control.
    ev.preventDefault();
    ev.stopPropagation();
    if (menu.hidden) show('first');
    else hide(true);
  });
  button.addEventListener('keydown', (ev) => {
    if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
      ev.preventDefault();
      show(ev.key === 'ArrowDown' ? 'first' : 'last');
    }
  });
  menu.addEventListener('keydown', (ev) => {
    const list = items();
    const i = list.indexOf(document.activeElement as HTMLElement);
    const go = (j: number) => list[(j + list.length) % list.length]?.focus();
    switch (ev.key) {
      case 'ArrowDown':
        go(i + 1);
        break;
      case 'ArrowUp':
        go(i - 1);
        break;
      case 'Home':
        go(0);
        break;
      case 'End':
        go(list.length - 1);
        break;
      case 'Escape':
        hide(true);
        break;
      case 'Tab':
        hide(false);
        return;
      default:
        return;
    }
    ev.preventDefault();
  });
  return wrap;
}

async function rename(ctx: Ctx, app: MenuApp, hooks: MenuHooks): Promise<void> {
  const input = h('input', { type: 'text', id: `rename-${app.name}`, value: app.displayName, required: true, maxlength: 80 });
  const content = h('div', { class: 'field' }, h('label', { for: input.id }, 'Name shown on the home screen'), input);
  const dlg = modal(`Rename ${app.displayName}`, content, 'Rename', () => input.value.trim() !== '');
  input.addEventListener('input', () => dlg.refresh());
  input.select();
  if (!(await dlg.result)) return;
  const name = input.value.trim();
  try {
    await api.rename(app.name, name);
    app.displayName = name;
    hooks.onRenamed?.(name);
    document.dispatchEvent(new CustomEvent<{ app: string; displayName: string }>(APP_RENAMED, { detail: { app: app.name, displayName: name } }));
    ctx.announce(`Renamed to ${name}.`);
  } catch (err) {
    await showAppError(app, messageOf(err));
  }
}

async function restart(ctx: Ctx, app: MenuApp, hooks: MenuHooks): Promise<void> {
  ctx.announce(`Restarting ${app.displayName}…`);
  try {
    const r = await api.restart(app.name);
    if (!r.success) throw new Error(`Restarting ${app.displayName}: ${r.error ?? 'failed'}`);
    ctx.announce(`${app.displayName} restarted.`);
    hooks.onRestarted?.();
  } catch (err) {
    await showAppError(app, messageOf(err));
  }
}

/** An error about an app, with the app's last log lines under it (they usually say why). */
export async function showAppError(app: MenuApp, message: string): Promise<void> {
  const pre = h('pre', { class: 'log-tail', tabindex: 0, 'aria-label': `Last log lines of ${app.displayName}` }, 'Reading the log…');
  const content = h('div', {}, h('p', { class: 'error', role: 'alert' }, message), h('h3', {}, 'Last log lines'), pre);
  const dlg = modal(`${app.displayName}: something went wrong`, content, 'Close', () => true);
  // Nothing to cancel here: Close is the only answer.
  dlg.dialog.querySelector('button[value="cancel"]')?.remove();
  lastLogLines(app.name)
    .then((lines) => {
      pre.textContent = lines.length > 0 ? lines.join('\n') : '(the log is empty)';
    })
    .catch((err: unknown) => {
      pre.textContent = `The log is not available: ${messageOf(err)}`;
    });
  await dlg.result;
}
