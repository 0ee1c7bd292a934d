import { describe, expect, it } from 'vitest';
import { formatBytes, levelOf, parseStatus, readings, rollbackDiff, type Generation } from '../src/systemHealth';

describe('system health readings', () => {
  it('gives a level and a plain-language hint past each threshold', () => {
    const r = readings({ cpu: 12, memory: 85, disk: 93 });
    expect(r.map((x) => [x.key, x.level])).toEqual([
      ['cpu', 'ok'],
      ['memory', 'warn'],
      ['disk', 'critical'],
    ]);
    expect(r[0]?.hint).toBeNull();
    expect(r[2]?.hint).toBe('Disk almost full: uninstall apps or add storage.');
    expect(r[1]?.hint).toMatch(/uninstall apps/i);
  });

  it('shows the temperature only when the machine reports one', () => {
    expect(readings({ cpu: 1, memory: 1, disk: 1 }).map((x) => x.key)).not.toContain('temperature');
    const t = readings({ cpu: 1, memory: 1, disk: 1, temperature: 88.04 }).find((x) => x.key === 'temperature');
    expect(t?.value).toBe('88.0 °C');
    expect(t?.level).toBe('critical');
  });

  it('memory shows bytes when the agent sends them', () => {
    const m = readings({ cpu: 1, memory: 50, disk: 1, memoryUsed: 2 * 1024 ** 3, memoryTotal: 4 * 1024 ** 3 })[1];
    expect(m?.value).toBe('50% (2.0 GB of 4.0 GB)');
  });

  it('thresholds are inclusive', () => {
    expect(levelOf('disk', 79)).toBe('ok');
    expect(levelOf('disk', 80)).toBe('warn');
    expect(levelOf('disk', 90)).toBe('critical');
  });

  it('formats bytes and parses stream frames', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1536)).toBe('1.5 KB');
    expect(formatBytes(300 * 1024 * 1024)).toBe('300 MB');
    expect(parseStatus('{"cpu":1,"memory":2,"disk":3}')).toEqual({ cpu: 1, memory: 2, disk: 3 });
    expect(parseStatus('not json')).toBeNull();
    expect(parseStatus('{"cpu":"1"}')).toBeNull();
  });

  it('says which apps a rollback removes and brings back', () => {
    const g = (number: number, names: string[]): Generation => ({
      number,
      current: false,
      createdAt: '',
      apps: names.map((name) => ({ name, displayName: name.toUpperCase() })),
    });
    expect(rollbackDiff(g(3, ['a', 'b']), g(1, ['a', 'c']))).toEqual({ removed: ['B'], added: ['C'] });
  });
});
