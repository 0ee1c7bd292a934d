/**
 * Injection of the storage intercepts (metadata `bootstrap`) into an embedded app's HTML.
 * Apps such as Actual Budget read their server URL from IndexedDB/localStorage; the intercept
 * makes them see their `/embed/<app>` URL without the shell writing into the app's storage first.
 */
import type { InterceptConfig } from './messages';

export function escapeHtmlAttr(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * Runs in the app's page before its own scripts. Kept self-contained: it is serialised with
 * Function.prototype.toString and must not reference anything outside itself.
 */
export function interceptMain(config: InterceptConfig, win: Window & typeof globalThis): void {
  const setPath = (obj: Record<string, unknown>, path: string, value: unknown): void => {
    const parts = path.split('.');
    let cur: Record<string, unknown> = obj;
    for (let i = 0; i < parts.length - 1; i += 1) {
      const p = parts[i] as string;
      const nextIsIndex = /^\d+$/.test(parts[i + 1] as string);
      if (typeof cur[p] !== 'object' || cur[p] === null) cur[p] = nextIsIndex ? [] : {};
      cur = cur[p] as Record<string, unknown>;
    }
    cur[parts[parts.length - 1] as string] = value;
  };

  const ls = config.localStorage?.intercepts ?? [];
  if (ls.length > 0 && win.Storage) {
    const original = win.Storage.prototype.getItem;
    win.Storage.prototype.getItem = function (this: Storage, key: string): string | null {
      const raw = original.call(this, key);
      if (this !== win.localStorage) return raw;
      const rule = ls.find((r) => r.key === key);
      if (rule === undefined) return raw;
      if (rule.jsonPatch !== undefined) {
        let parsed: Record<string, unknown> = {};
        try {
          const v: unknown = raw === null ? {} : JSON.parse(raw);
          if (typeof v === 'object' && v !== null) parsed = v as Record<string, unknown>;
        } catch {
          parsed = {};
        }
        for (const [path, value] of Object.entries(rule.jsonPatch)) setPath(parsed, path, value);
        return JSON.stringify(parsed);
      }
      if (rule.value === undefined) return raw;
      return typeof rule.value === 'string' ? rule.value : JSON.stringify(rule.value);
    };
  }

  const idb = config.indexedDB;
  if (idb !== undefined && idb.intercepts.length > 0 && win.IDBObjectStore) {
    const originalGet = win.IDBObjectStore.prototype.get;
    win.IDBObjectStore.prototype.get = function (this: IDBObjectStore, query: IDBValidKey | IDBKeyRange) {
      const req = originalGet.call(this, query);
      const dbName = this.transaction.db.name;
      const rule = idb.intercepts.find((r) => dbName === idb.database && r.store === this.name && r.key === query);
      if (rule === undefined) return req;
      // Replace the result once the real read finished, so both onsuccess and
      // addEventListener('success') observers see the intercepted value.
      req.addEventListener(
        'success',
        () => {
          Object.defineProperty(req, 'result', { configurable: true, get: () => rule.value });
        },
        { once: true, capture: true } as AddEventListenerOptions,
      );
      return req;
    };
  }
}

export function interceptScript(config: InterceptConfig): string {
  // `<` escaped so that "</script>" inside a value cannot end the element.
  const json = JSON.stringify(config).replace(/</g, '\\u003c');
  return `(${interceptMain.toString()})(${json}, window);`;
}

/**
 * Insert the intercept markup right after the opening `<head>` tag (not `<header>`), else after the
 * doctype, else at the very start.
 */
export function injectIntercepts(html: string, config: InterceptConfig): string {
  const markup =
    `<meta name="bloud-intercept-config" content="${escapeHtmlAttr(JSON.stringify(config))}">` +
    `<script>${interceptScript(config)}</script>`;
  const head = /<head(?=[\s>/])[^>]*>/i.exec(html);
  if (head !== null) {
    const at = head.index + head[0].length;
    return html.slice(0, at) + markup + html.slice(at);
  }
  const doctype = /<!doctype[^>]*>/i.exec(html);
  if (doctype !== null) {
    const at = doctype.index + doctype[0].length;
    return html.slice(0, at) + markup + html.slice(at);
  }
  return markup + html;
}

export function hasIntercepts(config: InterceptConfig | null | undefined): config is InterceptConfig {
  if (!config) return false;
  return (config.indexedDB?.intercepts.length ?? 0) > 0 || (config.localStorage?.intercepts.length ?? 0) > 0;
}
