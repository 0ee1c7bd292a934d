/**
 * The lines behind the log viewer: an append-only buffer with a bound, a case-insensitive filter
 * kept up to date as lines arrive, and the window of rows to draw for a scroll position. Pure, so
 * the virtualisation arithmetic is unit-tested without a browser.
 */
export const MAX_LINES = 200_000;

export class LogBuffer {
  lines: string[] = [];
  /** Indices into `lines` matching the query; null when there is no query. */
  private matches: number[] | null = null;
  private query = '';
  /** Lines dropped from the front to stay within `max`. */
  dropped = 0;

  constructor(readonly max = MAX_LINES) {}

  push(line: string): void {
    this.lines.push(line);
    if (this.matches !== null && this.matchesQuery(line)) this.matches.push(this.lines.length - 1);
    if (this.lines.length > this.max) {
      // Drop a tenth at once: trimming one line per push would copy the array every time.
      const cut = Math.ceil(this.max / 10);
      this.lines.splice(0, cut);
      this.dropped += cut;
      if (this.matches !== null) this.matches = this.matches.filter((i) => i >= cut).map((i) => i - cut);
    }
  }

  setQuery(q: string): void {
    this.query = q.toLowerCase();
    if (this.query === '') {
      this.matches = null;
      return;
    }
    const out: number[] = [];
    for (let i = 0; i < this.lines.length; i++) if (this.matchesQuery(this.lines[i] ?? '')) out.push(i);
    this.matches = out;
  }

  get filtering(): boolean {
    return this.matches !== null;
  }

  /** How many rows the view shows (all lines, or the matches). */
  get rowCount(): number {
    return this.matches?.length ?? this.lines.length;
  }

  /** The text of view row `row`. */
  row(row: number): string {
    const i = this.matches === null ? row : this.matches[row];
    return i === undefined ? '' : (this.lines[i] ?? '');
  }

  text(): string {
    return this.lines.join('\n') + (this.lines.length > 0 ? '\n' : '');
  }

  private matchesQuery(line: string): boolean {
    return line.toLowerCase().includes(this.query);
  }
}

/** The rows to draw for a viewport: `[first, end)`, with `overscan` rows either side. */
export function visibleRange(scrollTop: number, viewportHeight: number, rowHeight: number, rowCount: number, overscan = 10): { first: number; end: number } {
  const top = Math.max(0, Math.floor(scrollTop / rowHeight) - overscan);
  const end = Math.min(rowCount, Math.ceil((scrollTop + viewportHeight) / rowHeight) + overscan);
  return { first: Math.min(top, end), end };
}

/** Splits `text` around case-insensitive occurrences of `query`, for highlighting. */
export function highlightParts(text: string, query: string): Array<{ text: string; match: boolean }> {
  if (query === '') return [{ text, match: false }];
  const lower = text.toLowerCase();
  const q = query.toLowerCase();
  // Lower-casing can change the length (İ → i̇); then offsets would not line up: no highlight.
  if (lower.length !== text.length) return [{ text, match: false }];
  const out: Array<{ text: string; match: boolean }> = [];
  let at = 0;
  for (;;) {
    const i = lower.indexOf(q, at);
    if (i < 0) break;
    if (i > at) out.push({ text: text.slice(at, i), match: false });
    out.push({ text: text.slice(i, i + q.length), match: true });
    at = i + q.length;
  }
  if (at < text.length) out.push({ text: text.slice(at), match: false });
  return out;
}
