/**
 * The home screen's tile order, kept per user in `/api/user/layout` (a grid of
 * `{type,id,col,row,colspan,rowspan}` as upstream). The shell lays tiles out in reading order, so
 * only the order of the `app` entries matters here; entries of other types (widgets) are kept
 * as they are when the order is saved.
 */
import type { GridElement } from './types';

/** Columns of the stored grid: the order is written row by row in this many columns. */
export const GRID_COLUMNS = 6;

/** App names in the stored order (reading order: row, then column). */
export function storedOrder(layout: GridElement[]): string[] {
  return layout
    .filter((g) => g.type === 'app')
    .slice()
    .sort((a, b) => a.row - b.row || a.col - b.col)
    .map((g) => g.id);
}

/**
 * `names` ordered by the stored layout; apps the layout doesn't know (installed since) follow,
 * in the order given.
 */
export function applyOrder(names: string[], order: string[]): string[] {
  const rank = new Map(order.map((n, i) => [n, i]));
  const known = names.filter((n) => rank.has(n)).sort((a, b) => (rank.get(a) ?? 0) - (rank.get(b) ?? 0));
  return [...known, ...names.filter((n) => !rank.has(n))];
}

/** The layout to store for `order`, keeping the non-app entries of `previous`. */
export function layoutFor(order: string[], previous: GridElement[]): GridElement[] {
  const apps: GridElement[] = order.map((id, i) => ({
    type: 'app',
    id,
    col: (i % GRID_COLUMNS) + 1,
    row: Math.floor(i / GRID_COLUMNS) + 1,
    colspan: 1,
    rowspan: 1,
  }));
  return [...previous.filter((g) => g.type !== 'app'), ...apps];
}

/** `order` with `name` moved by `delta` places (clamped to the ends). */
export function moveBy(order: string[], name: string, delta: number): string[] {
  const from = order.indexOf(name);
  if (from < 0) return order;
  const to = Math.max(0, Math.min(order.length - 1, from + delta));
  return moveTo(order, name, to);
}

/** `order` with `name` placed at index `to`. */
export function moveTo(order: string[], name: string, to: number): string[] {
  const rest = order.filter((n) => n !== name);
  if (rest.length === order.length) return order;
  const at = Math.max(0, Math.min(rest.length, to));
  return [...rest.slice(0, at), name, ...rest.slice(at)];
}
