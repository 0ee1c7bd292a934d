/**
 * Step-up: the agent answers a destructive or account action with
 * `403 {"stepUpRequired": true, "action"}` until the user confirms their password. The shell
 * then asks for it (a dialog), gets a single-use token for that action and repeats the request
 * with the token in `X-Bloud-Step-Up`. Pure helpers here; the dialog is views/stepup.ts.
 */
import type { Role, StepUpRequired, User } from './types';

export const STEP_UP_HEADER = 'X-Bloud-Step-Up';

/** The action to confirm when `body` is a step-up demand, else null. */
export function stepUpAction(status: number, body: unknown): string | null {
  if (status !== 403 || typeof body !== 'object' || body === null) return null;
  const b = body as Partial<StepUpRequired>;
  return b.stepUpRequired === true && typeof b.action === 'string' && b.action !== '' ? b.action : null;
}

/** What the password confirms, in words, for the dialog. */
export function describeAction(action: string, names: (id: string) => string = (id) => id): string {
  const [kind, target = ''] = splitAction(action);
  switch (kind) {
    case 'apps.uninstall-data':
      return `Uninstall ${target} and delete its data`;
    case 'apps.clear-data':
      return `Delete the data of ${target}`;
    case 'system.rollback':
      return `Roll back the system to generation ${target}`;
    case 'users.add':
      return 'Add a user';
    case 'users.remove':
      return `Remove the user ${names(target)}`;
    case 'users.password':
      return `Set a new password for ${names(target)}`;
    case 'users.role':
      return `Change the role of ${names(target)}`;
    case 'users.apps':
      return `Change which apps ${names(target)} may open`;
    default:
      return action;
  }
}

function splitAction(action: string): [string, string?] {
  const i = action.indexOf(':');
  return i < 0 ? [action] : [action.slice(0, i), action.slice(i + 1)];
}

/** Agents without roles had one account, its administrator. */
export function roleOf(user: User | null): Role | null {
  if (user === null) return null;
  return user.role === 'member' ? 'member' : 'admin';
}

export function isAdmin(user: User | null): boolean {
  return roleOf(user) === 'admin';
}
