/**
 * Which app each browser client (window/iframe/worker, by clientId) belongs to, which app the shell
 * shows, and per-app settings the shell sent. Reads hit memory first; every change is written
 * through to `Persist`, so a restarted worker answers the same as the one before it.
 */
import type { Persist } from './persist';
import type { InterceptConfig } from './messages';

export interface AppSettings {
  needsRewrite: boolean;
  intercepts?: InterceptConfig | null;
}

interface ClientRecord {
  app: string;
  at: number;
}

interface ActiveRecord {
  app: string | null;
  /** The shell window that said so; the value is void once that window is gone. */
  shellClientId: string | null;
}

const ACTIVE_KEY = 'active';
const appKey = (app: string) => `app:${app}`;

export class Attribution {
  private readonly clients = new Map<string, string>();
  private readonly settings = new Map<string, AppSettings>();
  private active: ActiveRecord | undefined;

  constructor(
    private readonly persist: Persist,
    private readonly onError: (what: string, err: unknown) => void = () => undefined,
    private readonly now: () => number = Date.now,
  ) {}

  async clientApp(clientId: string): Promise<string | null> {
    if (!clientId) return null;
    const hit = this.clients.get(clientId);
    if (hit !== undefined) return hit;
    const rec = await this.read<ClientRecord>('clients', clientId);
    if (rec === undefined || typeof rec.app !== 'string') return null;
    this.clients.set(clientId, rec.app);
    return rec.app;
  }

  async register(clientId: string, app: string): Promise<void> {
    if (!clientId) return;
    this.clients.set(clientId, app);
    await this.write(() => this.persist.put('clients', clientId, { app, at: this.now() } satisfies ClientRecord));
  }

  async forget(clientId: string): Promise<void> {
    if (!clientId) return;
    this.clients.delete(clientId);
    await this.write(() => this.persist.delete('clients', clientId));
  }

  /**
   * Drop records of clients that no longer exist (called on activation and now and then).
   * A navigation's client is registered before it exists, so records younger than `graceMs`
   * are kept even when their client is not live (yet).
   */
  async prune(live: ReadonlySet<string>, graceMs = 60_000): Promise<number> {
    let keys: string[];
    try {
      keys = await this.persist.keys('clients');
    } catch (err) {
      this.onError('listing persisted clients', err);
      return 0;
    }
    const cutoff = this.now() - graceMs;
    let dropped = 0;
    for (const id of keys) {
      if (live.has(id)) continue;
      const rec = await this.read<ClientRecord>('clients', id);
      if (rec !== undefined && typeof rec.at === 'number' && rec.at > cutoff) continue;
      await this.forget(id);
      dropped += 1;
    }
    return dropped;
  }

  async setActive(app: string | null, shellClientId: string | null): Promise<void> {
    this.active = { app, shellClientId };
    await this.write(() => this.persist.put('state', ACTIVE_KEY, this.active));
  }

  async getActive(): Promise<ActiveRecord> {
    if (this.active === undefined) {
      const rec = await this.read<ActiveRecord>('state', ACTIVE_KEY);
      this.active = rec ?? { app: null, shellClientId: null };
    }
    return this.active;
  }

  async setSettings(app: string, update: Partial<AppSettings>): Promise<void> {
    const merged: AppSettings = { ...(await this.getSettings(app)), ...update };
    this.settings.set(app, merged);
    await this.write(() => this.persist.put('state', appKey(app), merged));
  }

  /** Unknown apps are rewritten (as upstream): only an explicit `stripPrefix: false` turns it off. */
  async getSettings(app: string): Promise<AppSettings> {
    const hit = this.settings.get(app);
    if (hit !== undefined) return hit;
    const rec = await this.read<AppSettings>('state', appKey(app));
    const value: AppSettings = rec ?? { needsRewrite: true };
    this.settings.set(app, value);
    return value;
  }

  /** Synchronous view of settings already loaded, for the pure decision procedure. */
  needsRewriteCached(app: string): boolean {
    return this.settings.get(app)?.needsRewrite ?? true;
  }

  settingsCached(app: string): AppSettings | undefined {
    return this.settings.get(app);
  }

  private async read<T>(store: 'clients' | 'state', key: string): Promise<T | undefined> {
    try {
      return await this.persist.get<T>(store, key);
    } catch (err) {
      this.onError(`reading ${store}/${key}`, err);
      return undefined;
    }
  }

  private async write(op: () => Promise<void>): Promise<void> {
    try {
      await op();
    } catch (err) {
      // Memory still has the value; only durability across a restart is lost.
      this.onError('persisting worker state', err);
    }
  }
}
