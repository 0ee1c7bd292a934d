/** Catalog search and category filter: which apps a query and a category leave. Pure. */
import type { CatalogApp } from './types';

/** Lower case, accents removed, so "jellyfin" finds "Jellyfin" and "resume" "Résumé". */
function fold(s: string): string {
  return s.normalize('NFKD').replace(/\p{M}/gu, '').toLowerCase();
}

/** The text a query is matched against: names, description, category, tags. */
function haystack(app: CatalogApp): string {
  const tags = Array.isArray(app.tags) ? app.tags.filter((t): t is string => typeof t === 'string') : [];
  return fold([app.name, app.displayName, app.description, app.category, ...tags].join(' '));
}

/**
 * Apps matching every word of `query` (in any field, in any order) and in `category`
 * (`''` for all categories).
 */
export function filterCatalog(apps: CatalogApp[], query: string, category: string): CatalogApp[] {
  const words = fold(query).split(/\s+/).filter((w) => w !== '');
  return apps.filter((a) => {
    if (category !== '' && a.category !== category) return false;
    const text = haystack(a);
    return words.every((w) => text.includes(w));
  });
}

/** The categories present, sorted, for the filter's options. */
export function categoriesOf(apps: CatalogApp[]): string[] {
  return [...new Set(apps.map((a) => a.category).filter((c) => c !== ''))].sort();
}
