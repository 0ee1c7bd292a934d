/**
 * Which apps are open as tabs, in strip order, and which was used least recently. Pure state;
 * tabs.ts wires it to iframes. Opening beyond the limit evicts the least recently used tab that
 * is not the one being opened.
 */
export const TAB_LIMIT = 6;

export class TabSet {
  /** Strip order: the order the apps were opened. */
  private order: string[] = [];
  /** Most recently used last. */
  private recency: string[] = [];

  constructor(readonly limit = TAB_LIMIT) {
    if (!Number.isInteger(limit) || limit < 1) throw new Error(`tab limit must be a positive integer, got ${limit}`);
  }

  get apps(): readonly string[] {
    return this.order;
  }

  get active(): string | null {
    return this.recency.at(-1) ?? null;
  }

  has(app: string): boolean {
    return this.order.includes(app);
  }

  /** Opens (or re-activates) `app`; returns the apps evicted to stay within the limit. */
  open(app: string): string[] {
    if (!this.has(app)) this.order.push(app);
    this.touch(app);
    const evicted: string[] = [];
    while (this.order.length > this.limit) {
      const victim = this.recency[0];
      if (victim === undefined || victim === app) break;
      this.close(victim);
      evicted.push(victim);
    }
    return evicted;
  }

  close(app: string): void {
    this.order = this.order.filter((a) => a !== app);
    this.recency = this.recency.filter((a) => a !== app);
  }

  /** The tab `delta` places from `from` in strip order, wrapping around. */
  neighbour(from: string | null, delta: number): string | null {
    if (this.order.length === 0) return null;
    const i = from === null ? -1 : this.order.indexOf(from);
    const start = i < 0 ? (delta > 0 ? -1 : 0) : i;
    const n = this.order.length;
    return this.order[(((start + delta) % n) + n) % n] ?? null;
  }

  private touch(app: string): void {
    this.recency = this.recency.filter((a) => a !== app);
    this.recency.push(app);
  }
}
