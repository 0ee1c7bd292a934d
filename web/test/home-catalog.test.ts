import { describe, expect, it } from 'vitest';
import { categoriesOf, filterCatalog } from '../src/catalogFilter';
import { applyOrder, layoutFor, moveBy, moveTo, storedOrder } from '../src/layout';
import { parseRoute } from '../src/routes';
import type { CatalogApp, GridElement } from '../src/types';

const g = (id: string, col: number, row: number, type = 'app'): GridElement => ({ type, id, col, row, colspan: 1, rowspan: 1 });

describe('home layout', () => {
  it('reads the stored order row by row, then by column', () => {
    expect(storedOrder([g('c', 1, 2), g('b', 2, 1), g('a', 1, 1), g('cpu', 3, 1, 'widget')])).toEqual(['a', 'b', 'c']);
  });

  it('puts apps the layout does not know after the stored ones, and drops stored apps that are gone', () => {
    expect(applyOrder(['a', 'b', 'c', 'new'], ['c', 'gone', 'a'])).toEqual(['c', 'a', 'b', 'new']);
  });

  it('writes the order in six columns and keeps widgets', () => {
    const names = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
    const out = layoutFor(names, [g('old', 1, 1), g('cpu', 2, 3, 'widget')]);
    expect(out.filter((e) => e.type === 'widget')).toEqual([g('cpu', 2, 3, 'widget')]);
    expect(out.find((e) => e.id === 'g')).toEqual(g('g', 1, 2));
    expect(out.some((e) => e.id === 'old')).toBe(false);
    expect(storedOrder(out)).toEqual(names);
    expect(out.every((e) => e.col >= 1 && e.row >= 1)).toBe(true);
  });

  it('moves an app by a step or to a place, clamped at the ends', () => {
    expect(moveBy(['a', 'b', 'c'], 'c', -1)).toEqual(['a', 'c', 'b']);
    expect(moveBy(['a', 'b', 'c'], 'a', -1)).toEqual(['a', 'b', 'c']);
    expect(moveBy(['a', 'b', 'c'], 'a', 10)).toEqual(['b', 'c', 'a']);
    expect(moveTo(['a', 'b', 'c'], 'a', 1)).toEqual(['b', 'a', 'c']);
    expect(moveTo(['a', 'b'], 'zzz', 0)).toEqual(['a', 'b']);
  });
});

describe('catalog search and category', () => {
  const app = (name: string, displayName: string, category: string, description: string, extra: Partial<CatalogApp> = {}): CatalogApp => ({
    name,
    displayName,
    category,
    description,
    ...extra,
  });
  const apps = [
    app('radarr', 'Radarr', 'media', 'Movie collection manager'),
    app('jellyfin', 'Jellyfin', 'media', 'Media server'),
    app('miniflux', 'Miniflux', 'productivity', 'Minimalist feed reader', { tags: ['rss'] }),
    app('actual-budget', 'Actual Budget', 'productivity', 'Résumé of your money'),
  ];
  const names = (l: CatalogApp[]) => l.map((a) => a.name);

  it('matches every word in any field, ignoring case and accents', () => {
    expect(names(filterCatalog(apps, 'JELLY', ''))).toEqual(['jellyfin']);
    expect(names(filterCatalog(apps, 'manager movie', ''))).toEqual(['radarr']);
    expect(names(filterCatalog(apps, 'rss', ''))).toEqual(['miniflux']);
    expect(names(filterCatalog(apps, 'resume', ''))).toEqual(['actual-budget']);
    expect(names(filterCatalog(apps, '  ', ''))).toHaveLength(4);
    expect(filterCatalog(apps, 'nothing-like-this', '')).toEqual([]);
  });

  it('filters by category, together with the query', () => {
    expect(names(filterCatalog(apps, '', 'media'))).toEqual(['radarr', 'jellyfin']);
    expect(names(filterCatalog(apps, 'media', 'productivity'))).toEqual([]);
    expect(categoriesOf(apps)).toEqual(['media', 'productivity']);
  });
});

describe('app detail route', () => {
  it('parses /catalog/<app> and refuses odd names', () => {
    expect(parseRoute('/catalog/radarr')).toEqual({ name: 'app-detail', app: 'radarr' });
    expect(parseRoute('/catalog/radarr/')).toEqual({ name: 'app-detail', app: 'radarr' });
    expect(parseRoute('/catalog/..')).toEqual({ name: 'not-found', path: '/catalog/..' });
    expect(parseRoute('/catalog/a/b')).toEqual({ name: 'not-found', path: '/catalog/a/b' });
  });
});
