import { afterEach, describe, expect, it, vi } from 'vitest';
import { api } from '../src/api';

/** Records what the shell sends, answering every request with `{}`. */
function recordFetch(): { method: string; url: string; headers: Record<string, string>; body: unknown }[] {
  const sent: { method: string; url: string; headers: Record<string, string>; body: unknown }[] = [];
  vi.stubGlobal('fetch', async (url: string, init: RequestInit) => {
    sent.push({
      method: init.method ?? 'GET',
      url,
      headers: (init.headers ?? {}) as Record<string, string>,
      body: init.body,
    });
    return new Response('{}', { status: 200, headers: { 'content-type': 'application/json' } });
  });
  return sent;
}

/** The one request sent. */
function only(sent: ReturnType<typeof recordFetch>): ReturnType<typeof recordFetch>[number] {
  expect(sent).toHaveLength(1);
  const first = sent[0];
  if (first === undefined) throw new Error('nothing was sent');
  return first;
}

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('state-changing calls (the agent answers 415 to anything but JSON)', () => {
  it.each([
    ['logout', () => api.logout()],
    ['login', () => api.login('alice', 'password123')],
    ['createUser', () => api.createUser('alice', 'password123')],
    ['install without choices', () => api.install('radarr', {})],
    ['install with choices', () => api.install('miniflux', { database: 'postgres' })],
    ['uninstall keeping data', () => api.uninstall('radarr', false)],
    ['uninstall with data', () => api.uninstall('radarr', true)],
  ])('%s sends Content-Type: application/json and a JSON body', async (_name, run) => {
    const sent = recordFetch();
    await run();
    const req = only(sent);
    expect(req.method).toBe('POST');
    expect(req.headers['content-type']).toBe('application/json');
    expect(typeof req.body).toBe('string');
    expect(() => JSON.parse(req.body as string)).not.toThrow();
  });

  it('a call without a body sends {}', async () => {
    const sent = recordFetch();
    await api.logout();
    await api.uninstall('radarr', false);
    expect(sent.map((s) => s.body)).toEqual(['{}', '{}']);
  });

  it('reads send no body', async () => {
    const sent = recordFetch();
    await api.installed();
    const req = only(sent);
    expect(req.method).toBe('GET');
    expect(req.body).toBeUndefined();
    expect(req.headers['content-type']).toBeUndefined();
  });
});
