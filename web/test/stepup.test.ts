import { afterEach, describe, expect, it, vi } from 'vitest';
import { api, setStepUpHandler } from '../src/api';
import { describeAction, isAdmin, stepUpAction } from '../src/stepup';
import type { InstalledApp, UserInfo } from '../src/types';
import { accessChoices } from '../src/views/users';

const demand = { error: 'Confirm with your password to do this', stepUpRequired: true, action: 'apps.uninstall-data:notes' };

function jsonResponse(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
}

describe('stepUpAction', () => {
  it.each([
    [403, demand, 'apps.uninstall-data:notes'],
    [403, { error: 'Only an administrator can do this' }, null],
    [403, { error: 'Wrong password' }, null],
    [401, demand, null],
    [403, { stepUpRequired: true }, null],
    [403, 'text', null],
  ])('%s %j → %s', (status, body, want) => {
    expect(stepUpAction(status, body)).toBe(want);
  });
});

describe('describeAction', () => {
  it.each([
    ['apps.uninstall-data:notes', 'Uninstall notes and delete its data'],
    ['apps.clear-data:photos', 'Delete the data of photos'],
    ['users.add', 'Add a user'],
    ['users.remove:u1', 'Remove the user bob'],
    ['users.apps:u1', 'Change which apps bob may open'],
    ['something.new', 'something.new'],
  ])('%s', (action, want) => {
    expect(describeAction(action, (id) => (id === 'u1' ? 'bob' : id))).toBe(want);
  });
});

it('roles: members are not admins; an agent without roles had only its admin', () => {
  expect(isAdmin({ id: 1, username: 'a', role: 'member' })).toBe(false);
  expect(isAdmin({ id: 1, username: 'a', role: 'admin' })).toBe(true);
  expect(isAdmin({ id: 1, username: 'a' })).toBe(true);
  expect(isAdmin(null)).toBe(false);
});

describe('a destructive call asks for the password, then repeats with the token', () => {
  afterEach(() => {
    vi.unstubAllGlobals();
  });

  it('retries once with X-Bloud-Step-Up and returns the real result', async () => {
    const seen: Array<Record<string, string>> = [];
    vi.stubGlobal(
      'fetch',
      vi.fn(async (_path: string, init: RequestInit) => {
        const headers = init.headers as Record<string, string>;
        seen.push(headers);
        return headers['X-Bloud-Step-Up'] === 'tok' ? jsonResponse(200, { app: 'notes', success: true }) : jsonResponse(403, demand);
      }),
    );
    const asked: string[] = [];
    setStepUpHandler(async (action) => {
      asked.push(action);
      return 'tok';
    });
    const r = await api.uninstall('notes', true);
    expect(r).toEqual({ app: 'notes', success: true });
    expect(asked).toEqual(['apps.uninstall-data:notes']);
    expect(seen.length).toBe(2);
    expect(seen[0]?.['X-Bloud-Step-Up']).toBeUndefined();
    expect(seen[1]?.['X-Bloud-Step-Up']).toBe('tok');
  });

  it('cancelling the dialog fails the call without repeating it', async () => {
    const fetchMock = vi.fn(async () => jsonResponse(403, demand));
    vi.stubGlobal('fetch', fetchMock);
    setStepUpHandler(async () => null);
    // acceptError would otherwise hand the 403 body back as an UninstallResult.
    await expect(api.uninstall('notes', true)).rejects.toThrow(/cancelled/);
    expect(fetchMock).toHaveBeenCalledTimes(1);
  });
});

it('access checkboxes: installed apps, plus granted ones no longer installed', () => {
  const app = (name: string, display_name: string, is_system = false) =>
    ({ id: 1, name, display_name, version: '', status: 'running', is_system, installed_at: '', updated_at: '' }) as InstalledApp;
  const users: UserInfo[] = [{ id: 'u1', username: 'bob', role: 'member', createdAt: '', apps: ['gone'] }];
  expect(accessChoices([app('notes', 'Notes'), app('postgres', 'PostgreSQL', true)], users)).toEqual([
    { name: 'gone', label: 'gone (not installed)' },
    { name: 'notes', label: 'Notes' },
  ]);
});
