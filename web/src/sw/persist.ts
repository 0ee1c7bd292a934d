/**
 * Durable key-value storage for the worker's state. A service worker is stopped whenever the
 * browser likes (idle, update, memory pressure); upstream kept its client → app map in memory
 * and lost it each time. IndexedDB is available in workers and survives those restarts.
 */

export type StoreName = 'clients' | 'state';

export interface Persist {
  get<T>(store: StoreName, key: string): Promise<T | undefined>;
  put(store: StoreName, key: string, value: unknown): Promise<void>;
  delete(store: StoreName, key: string): Promise<void>;
  keys(store: StoreName): Promise<string[]>;
}

export const DB_NAME = 'bloud-sw';
const DB_VERSION = 1;
const STORES: StoreName[] = ['clients', 'state'];

function promisify<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error('IndexedDB request failed'));
  });
}

function openDb(factory: IDBFactory, name: string): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = factory.open(name, DB_VERSION);
    req.onupgradeneeded = () => {
      const db = req.result;
      for (const s of STORES) if (!db.objectStoreNames.contains(s)) db.createObjectStore(s);
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(new Error(`cannot open IndexedDB "${name}": ${String(req.error)}`));
    req.onblocked = () => reject(new Error(`IndexedDB "${name}" is blocked by another connection`));
  });
}

/** IndexedDB-backed store. Opens lazily; each call is one short transaction. */
export class IdbPersist implements Persist {
  private db: Promise<IDBDatabase> | null = null;

  constructor(
    private readonly factory: IDBFactory,
    private readonly name: string = DB_NAME,
  ) {}

  private async tx(store: StoreName, mode: IDBTransactionMode): Promise<IDBObjectStore> {
    if (this.db === null) {
      this.db = openDb(this.factory, this.name);
      // A failed open is retried on the next call instead of being cached forever.
      this.db.catch(() => {
        this.db = null;
      });
    }
    const db = await this.db;
    return db.transaction(store, mode).objectStore(store);
  }

  async get<T>(store: StoreName, key: string): Promise<T | undefined> {
    return (await promisify((await this.tx(store, 'readonly')).get(key))) as T | undefined;
  }

  async put(store: StoreName, key: string, value: unknown): Promise<void> {
    await promisify((await this.tx(store, 'readwrite')).put(value, key));
  }

  async delete(store: StoreName, key: string): Promise<void> {
    await promisify((await this.tx(store, 'readwrite')).delete(key));
  }

  async keys(store: StoreName): Promise<string[]> {
    const keys = await promisify((await this.tx(store, 'readonly')).getAllKeys());
    return keys.map((k) => String(k));
  }

  close(): void {
    void this.db?.then((db) => db.close()).catch(() => undefined);
    this.db = null;
  }
}

/** Fallback when IndexedDB is unavailable (e.g. some private-browsing modes): memory only. */
export class MemoryPersist implements Persist {
  private readonly data = new Map<StoreName, Map<string, unknown>>(STORES.map((s) => [s, new Map()]));

  private store(s: StoreName): Map<string, unknown> {
    const m = this.data.get(s);
    if (m === undefined) throw new Error(`unknown store ${s}`);
    return m;
  }

  async get<T>(store: StoreName, key: string): Promise<T | undefined> {
    return structuredClone(this.store(store).get(key)) as T | undefined;
  }

  async put(store: StoreName, key: string, value: unknown): Promise<void> {
    this.store(store).set(key, structuredClone(value));
  }

  async delete(store: StoreName, key: string): Promise<void> {
    this.store(store).delete(key);
  }

  async keys(store: StoreName): Promise<string[]> {
    return [...this.store(store).keys()];
  }
}
