import { appEndpoint } from '../api';
import { h } from '../dom';
import type { Route } from '../routes';
import type { User } from '../types';

export interface Ctx {
  navigate(path: string, opts?: { replace?: boolean }): void;
  user: User | null;
  /** Re-read setup status and the session, then re-route. */
  refreshSession(): Promise<void>;
  /** Polite screen-reader announcement. */
  announce(text: string): void;
  /** Replace the shell URL without re-rendering (iframe sync). */
  replaceUrl(path: string): void;
}

export interface View {
  el: HTMLElement;
  /** Title for document.title and the page heading. */
  title: string;
  cleanup?(): void;
  /** Handle a route change without re-mounting; return false to re-mount. */
  update?(route: Route): boolean;
}

const STATUS_TEXT: Record<string, string> = {
  installing: 'Installing',
  starting: 'Starting',
  running: 'Running',
  error: 'Unhealthy',
  failed: 'Failed',
  uninstalling: 'Removing',
  stopped: 'Stopped',
};

export function statusBadge(status: string): HTMLElement {
  const known = status in STATUS_TEXT ? status : 'other';
  return h('span', { class: `badge badge-${known}` }, STATUS_TEXT[status] ?? status);
}

/** The app's icon, or its initial when the icon is missing. Decorative: the name is next to it. */
export function appIcon(name: string, displayName: string): HTMLElement {
  const wrap = h('span', { class: 'app-icon', 'aria-hidden': 'true' });
  const img = h('img', { src: appEndpoint.icon(name), alt: '', width: 48, height: 48, loading: 'lazy', decoding: 'async' });
  img.addEventListener('error', () => {
    img.remove();
    wrap.textContent = (displayName || name).charAt(0).toUpperCase();
    wrap.classList.add('app-icon-fallback');
  });
  wrap.append(img);
  return wrap;
}

export function errorBox(message: string): HTMLElement {
  return h('p', { class: 'error', role: 'alert' }, message);
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function loading(text = 'Loading…'): HTMLElement {
  return h('p', { class: 'muted', role: 'status' }, text);
}
