import { describe, expect, it } from 'vitest';
import { highlightParts, LogBuffer, visibleRange } from '../src/logview';
import { TabSet } from '../src/tabset';

describe('TabSet', () => {
  it('keeps strip order and evicts the least recently used beyond the limit', () => {
    const s = new TabSet(3);
    expect(s.open('a')).toEqual([]);
    s.open('b');
    s.open('c');
    s.open('a'); // a is used again: b is now the least recent
    expect(s.open('d')).toEqual(['b']);
    expect(s.apps).toEqual(['a', 'c', 'd']);
    expect(s.active).toBe('d');
  });

  it('never evicts the tab being opened, and closing forgets it', () => {
    const s = new TabSet(1);
    s.open('a');
    expect(s.open('b')).toEqual(['a']);
    expect(s.apps).toEqual(['b']);
    s.close('b');
    expect(s.apps).toEqual([]);
    expect(s.active).toBeNull();
  });

  it('finds neighbours in strip order, wrapping around', () => {
    const s = new TabSet(6);
    for (const a of ['a', 'b', 'c']) s.open(a);
    expect(s.neighbour('c', 1)).toBe('a');
    expect(s.neighbour('a', -1)).toBe('c');
    expect(s.neighbour(null, 1)).toBe('a');
    expect(s.neighbour(null, -1)).toBe('c');
  });

  it('refuses a limit below one', () => {
    expect(() => new TabSet(0)).toThrow(/positive integer/);
  });
});

describe('LogBuffer', () => {
  it('filters case-insensitively, also lines arriving after the query', () => {
    const b = new LogBuffer();
    b.push('GET /a');
    b.push('error: disk full');
    b.setQuery('ERROR');
    b.push('another Error');
    expect(b.rowCount).toBe(2);
    expect(b.row(1)).toBe('another Error');
    b.setQuery('');
    expect(b.rowCount).toBe(3);
  });

  it('drops the oldest tenth when full and keeps matches aligned', () => {
    const b = new LogBuffer(10);
    b.setQuery('x');
    for (let i = 0; i < 11; i++) b.push(i % 2 ? `x${i}` : `y${i}`);
    expect(b.lines.length).toBe(10);
    expect(b.dropped).toBe(1);
    expect(b.row(0)).toBe('x1');
    expect(b.text().startsWith('x1\n')).toBe(true);
  });
});

describe('visibleRange', () => {
  it('draws only the rows in view plus overscan', () => {
    expect(visibleRange(0, 180, 18, 100_000, 5)).toEqual({ first: 0, end: 15 });
    expect(visibleRange(18 * 50_000, 180, 18, 100_000, 5)).toEqual({ first: 49_995, end: 50_015 });
    expect(visibleRange(18 * 99_995, 180, 18, 100_000, 5)).toEqual({ first: 99_990, end: 100_000 });
  });
});

describe('highlightParts', () => {
  it('marks every occurrence, whatever the case', () => {
    expect(highlightParts('Err err', 'err')).toEqual([
      { text: 'Err', match: true },
      { text: ' ', match: false },
      { text: 'err', match: true },
    ]);
    expect(highlightParts('abc', '')).toEqual([{ text: 'abc', match: false }]);
  });
});
