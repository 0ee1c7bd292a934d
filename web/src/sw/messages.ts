/** Messages between the shell and the worker. Each is acknowledged on `event.ports[0]`. */

export interface IndexedDbIntercept {
  store: string;
  key: string;
  value: unknown;
}

export interface LocalStorageIntercept {
  key: string;
  /** Replaces the stored value (strings as-is, anything else JSON-encoded). */
  value?: unknown;
  /** Patches the stored JSON: dot path (numeric parts index arrays) → value. */
  jsonPatch?: Record<string, unknown>;
}

/** `metadata.yaml bootstrap`, templates already substituted by the shell. */
export interface InterceptConfig {
  indexedDB?: { database: string; intercepts: IndexedDbIntercept[] };
  localStorage?: { intercepts: LocalStorageIntercept[] };
}

export type ShellMessage =
  | { type: 'SET_ACTIVE_APP'; appName: string | null; needsRewrite?: boolean }
  | { type: 'SET_INTERCEPTS'; appName: string; config: InterceptConfig | null }
  | { type: 'GET_STATE' };

export interface Ack {
  ok: boolean;
  error?: string;
  version?: string;
  activeApp?: string | null;
}

export const SW_VERSION = '2026-11-26-persistent-attribution';

export function parseShellMessage(data: unknown): ShellMessage | null {
  if (typeof data !== 'object' || data === null) return null;
  const m = data as Record<string, unknown>;
  switch (m.type) {
    case 'SET_ACTIVE_APP':
      if (m.appName !== null && typeof m.appName !== 'string') return null;
      if (m.needsRewrite !== undefined && typeof m.needsRewrite !== 'boolean') return null;
      return { type: 'SET_ACTIVE_APP', appName: m.appName, needsRewrite: m.needsRewrite };
    case 'SET_INTERCEPTS':
      if (typeof m.appName !== 'string') return null;
      if (m.config !== null && (typeof m.config !== 'object' || m.config === undefined)) return null;
      return { type: 'SET_INTERCEPTS', appName: m.appName, config: m.config as InterceptConfig | null };
    case 'GET_STATE':
      return { type: 'GET_STATE' };
    default:
      return null;
  }
}
