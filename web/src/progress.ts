/**
 * Interpreting the two streams the install progress page follows: app status snapshots
 * (`/api/apps/events`) and rebuild log events.
 */
import type { InstalledApp } from './types';

export interface LogEvent {
  kind: 'output' | 'error' | 'complete';
  lines: string[];
  /** Only on `complete`. */
  success?: boolean;
}

/**
 * A rebuild stream frame: upstream's `RebuildEvent` JSON `{"type","message","success"?}`, or a raw
 * text line (upstream's journal streams send those). Multi-line messages become several lines.
 */
export function parseLogEvent(data: string): LogEvent {
  const trimmed = data.trimStart();
  if (trimmed.startsWith('{')) {
    try {
      const v = JSON.parse(trimmed) as Record<string, unknown>;
      if (typeof v.type === 'string' && typeof v.message === 'string') {
        const kind = v.type === 'error' || v.type === 'complete' ? v.type : 'output';
        const ev: LogEvent = { kind, lines: splitLines(v.message) };
        if (kind === 'complete') ev.success = v.success === true;
        return ev;
      }
      if (typeof v.line === 'string') return { kind: 'output', lines: splitLines(v.line) };
    } catch {
      // not JSON after all: show it as text
    }
  }
  return { kind: 'output', lines: splitLines(data) };
}

function splitLines(s: string): string[] {
  return s.replace(/\r\n?/g, '\n').replace(/\n$/, '').split('\n');
}

/** `/api/apps/events` frame: the whole installed list (`null` from upstream means empty). */
export function parseAppsSnapshot(data: string): InstalledApp[] | null {
  let v: unknown;
  try {
    v = JSON.parse(data);
  } catch {
    return null;
  }
  if (v === null) return [];
  if (!Array.isArray(v)) return null;
  return v.filter(
    (a): a is InstalledApp =>
      typeof a === 'object' && a !== null && typeof (a as InstalledApp).name === 'string' && typeof (a as InstalledApp).status === 'string',
  );
}

export type Phase = 'waiting' | 'working' | 'done' | 'failed';

export interface PhaseView {
  phase: Phase;
  label: string;
}

/**
 * What the progress page says, from the app's row in the latest snapshot (undefined when the
 * app is not in the list) and whether the operation is an install or an uninstall.
 */
export function phaseOf(op: 'install' | 'uninstall', row: InstalledApp | undefined, everSeen: boolean): PhaseView {
  if (op === 'uninstall') {
    if (row === undefined) return { phase: 'done', label: 'Removed' };
    if (row.status === 'uninstalling') return { phase: 'working', label: 'Removing…' };
    if (row.status === 'error' || row.status === 'failed') return { phase: 'failed', label: 'Removal failed' };
    return { phase: 'waiting', label: 'Queued for removal' };
  }
  if (row === undefined) {
    return everSeen ? { phase: 'failed', label: 'No longer installed' } : { phase: 'waiting', label: 'Queued' };
  }
  switch (row.status) {
    case 'installing':
      return { phase: 'working', label: 'Installing (system rebuild)…' };
    case 'starting':
      return { phase: 'working', label: 'Starting…' };
    case 'running':
      return { phase: 'done', label: 'Running' };
    case 'error':
      return { phase: 'failed', label: 'Installed, but not healthy' };
    case 'failed':
      return { phase: 'failed', label: 'Install failed' };
    case 'uninstalling':
      return { phase: 'working', label: 'Being removed' };
    default:
      return { phase: 'working', label: row.status };
  }
}
