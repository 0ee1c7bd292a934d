/**
 * System health for the home widgets and the system page: the agent's `/api/system/status`,
 * `/api/system/apps`, `/api/system/storage` and `/api/system/versions` shapes, and the
 * thresholds that turn numbers into a level and a plain-language hint. Pure; views render it.
 */

export interface SystemStatus {
  cpu: number;
  memory: number;
  disk: number;
  /** °C; absent when the machine has no sensor. */
  temperature?: number;
  memoryUsed?: number;
  memoryTotal?: number;
}

export interface AppUsage {
  name: string;
  displayName: string;
  memory: number | null;
  storage: number;
  storagePartial?: boolean;
}

export interface Storage {
  used: number;
  total: number;
  free: number;
  percentage: number;
  path: string;
}

export interface Generation {
  number: number;
  current: boolean;
  createdAt: string;
  apps: Array<{ name: string; displayName: string }> | null;
  summary?: string;
  rebuildId?: number;
}

export type Level = 'ok' | 'warn' | 'critical';

export interface Reading {
  key: 'cpu' | 'memory' | 'disk' | 'temperature';
  label: string;
  /** What is shown, e.g. "42%" or "61.5 °C". */
  value: string;
  /** 0–100 for the meter. */
  percent: number;
  level: Level;
  /** Plain-language advice when not ok. */
  hint: string | null;
}

interface Threshold {
  warn: number;
  critical: number;
  hints: Record<Exclude<Level, 'ok'>, string>;
}

export const THRESHOLDS: Record<Reading['key'], Threshold> = {
  cpu: {
    warn: 80,
    critical: 95,
    hints: {
      warn: 'The processor is busy. Apps may feel slow; a rebuild or a media scan can cause this.',
      critical: 'The processor is overloaded. Apps will be slow: stop or uninstall apps you do not use.',
    },
  },
  memory: {
    warn: 80,
    critical: 92,
    hints: {
      warn: 'Memory is getting full. Apps may slow down: uninstall apps you do not use.',
      critical: 'Memory almost full: apps may be stopped. Uninstall apps or add memory.',
    },
  },
  disk: {
    warn: 80,
    critical: 90,
    hints: {
      warn: 'Disk filling up: check which apps use the most storage below.',
      critical: 'Disk almost full: uninstall apps or add storage.',
    },
  },
  temperature: {
    warn: 75,
    critical: 85,
    hints: {
      warn: 'The box is running warm: make sure its vents are free.',
      critical: 'The box is too hot: give it air, or it will slow itself down to cool.',
    },
  },
};

export function levelOf(key: Reading['key'], value: number): Level {
  const t = THRESHOLDS[key];
  if (value >= t.critical) return 'critical';
  if (value >= t.warn) return 'warn';
  return 'ok';
}

function clampPercent(n: number): number {
  return Number.isFinite(n) ? Math.max(0, Math.min(100, n)) : 0;
}

/** The readings to show, in order; temperature only when the machine reports one. */
export function readings(s: SystemStatus): Reading[] {
  const make = (key: Reading['key'], label: string, value: number, shown: string, percent: number): Reading => {
    const level = levelOf(key, value);
    return { key, label, value: shown, percent: clampPercent(percent), level, hint: level === 'ok' ? null : THRESHOLDS[key].hints[level] };
  };
  const out = [
    make('cpu', 'CPU', s.cpu, `${Math.round(s.cpu)}%`, s.cpu),
    make(
      'memory',
      'Memory',
      s.memory,
      s.memoryUsed !== undefined && s.memoryTotal !== undefined ? `${Math.round(s.memory)}% (${formatBytes(s.memoryUsed)} of ${formatBytes(s.memoryTotal)})` : `${Math.round(s.memory)}%`,
      s.memory,
    ),
    make('disk', 'Disk', s.disk, `${Math.round(s.disk)}%`, s.disk),
  ];
  if (typeof s.temperature === 'number') out.push(make('temperature', 'Temperature', s.temperature, `${s.temperature.toFixed(1)} °C`, s.temperature));
  return out;
}

/** `1.5 GB`, `320 MB`, `12 KB`, `0 B` (powers of 1024, as file managers show). */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '?';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${i === 0 ? v : v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

/** A status frame from the stream, or null when it is not one. */
export function parseStatus(data: string): SystemStatus | null {
  try {
    const v = JSON.parse(data) as Partial<SystemStatus>;
    if (typeof v.cpu === 'number' && typeof v.memory === 'number' && typeof v.disk === 'number') return v as SystemStatus;
  } catch {
    // not JSON
  }
  return null;
}

/** Apps leaving and coming back when rolling back from `current` to `target`. */
export function rollbackDiff(current: Generation | undefined, target: Generation): { removed: string[]; added: string[] } {
  const names = (g: Generation | undefined) => new Map((g?.apps ?? []).map((a) => [a.name, a.displayName || a.name]));
  const now = names(current);
  const then = names(target);
  return {
    removed: [...now].filter(([n]) => !then.has(n)).map(([, d]) => d),
    added: [...then].filter(([n]) => !now.has(n)).map(([, d]) => d),
  };
}
