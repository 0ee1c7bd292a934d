/**
 * An app's `bootstrap` metadata turned into what the worker and the shell act on: templates
 * `{{embedUrl}}`, `{{origin}}` and `{{<catalog field>}}` substituted in every string value.
 */
import type { InterceptConfig } from './sw/messages';
import type { Bootstrap, CatalogApp } from './types';

export interface ResolvedBootstrap {
  intercepts: InterceptConfig | null;
  writes: { database: string; store: string; key: string; value: unknown }[];
}

export function templateVars(app: CatalogApp, origin: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const [k, v] of Object.entries(app)) {
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') vars[k] = String(v);
  }
  vars.origin = origin;
  vars.embedUrl = `${origin}/embed/${app.name}`;
  return vars;
}

/** Unknown `{{names}}` are left as written so the mistake is visible, not silently emptied. */
export function substitute<T>(value: T, vars: Record<string, string>): T {
  if (typeof value === 'string') {
    return value.replace(/\{\{\s*([A-Za-z0-9_]+)\s*\}\}/g, (whole, name: string) => vars[name] ?? whole) as T;
  }
  if (Array.isArray(value)) return value.map((v: unknown) => substitute(v, vars)) as T;
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = substitute(v, vars);
    return out as T;
  }
  return value;
}

export function resolveBootstrap(app: CatalogApp, origin: string): ResolvedBootstrap {
  const b: Bootstrap | null | undefined = app.bootstrap;
  if (!b) return { intercepts: null, writes: [] };
  const r = substitute(b, templateVars(app, origin));
  const intercepts: InterceptConfig = {};
  if (r.indexedDB?.intercepts?.length) {
    intercepts.indexedDB = { database: r.indexedDB.database, intercepts: r.indexedDB.intercepts };
  }
  if (r.localStorage?.intercepts?.length) intercepts.localStorage = { intercepts: r.localStorage.intercepts };
  const writes = (r.indexedDB?.writes ?? []).map((w) => ({ database: r.indexedDB?.database ?? '', ...w }));
  return {
    intercepts: intercepts.indexedDB || intercepts.localStorage ? intercepts : null,
    writes: writes.filter((w) => w.database !== ''),
  };
}

/** Upstream: an app is rewritten unless its metadata says `routing.stripPrefix: false`. */
export function needsRewrite(app: CatalogApp): boolean {
  return app.routing?.stripPrefix !== false;
}
