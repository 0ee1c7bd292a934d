import { api } from '../api';
import { clear, h } from '../dom';
import { describeAction } from '../stepup';
import { errorBox, messageOf } from './common';

let queue: Promise<unknown> = Promise.resolve();
/** User ids → names, so the dialog says "Remove the user bob" (filled by the Users page). */
const userNames = new Map<string, string>();

export function rememberUserNames(users: Array<{ id: string; username: string }>): void {
  for (const u of users) userNames.set(u.id, u.username);
}

/**
 * Asks for the signed-in user's password to confirm `action`; resolves with the agent's
 * single-use step-up token, or null when the user cancels. One dialog at a time.
 */
export function confirmWithPassword(action: string): Promise<string | null> {
  const next = queue.then(() => openDialog(action, (id) => userNames.get(id) ?? id));
  queue = next.catch(() => undefined);
  return next;
}

function openDialog(action: string, names: (id: string) => string): Promise<string | null> {
  const titleId = `stepup-${Math.random().toString(36).slice(2)}`;
  const password = h('input', { id: `${titleId}-pw`, type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const errors = h('div', { 'aria-live': 'assertive' });
  const confirm = h('button', { type: 'submit', class: 'primary' }, 'Confirm');
  const cancel = h('button', { type: 'button' }, 'Cancel');
  const form = h(
    'form',
    {},
    h('h2', { id: titleId }, 'Confirm with your password'),
    h('p', {}, `${describeAction(action, names)}.`),
    h('p', { class: 'muted small' }, 'Bloud asks for your password again before it deletes data or changes accounts.'),
    h('div', { class: 'field' }, h('label', { for: password.id }, 'Your password'), password),
    errors,
    h('div', { class: 'actions' }, cancel, confirm),
  );
  const dialog = h('dialog', { 'aria-labelledby': titleId, class: 'step-up' }, form);
  document.body.append(dialog);
  return new Promise((resolve) => {
    let token: string | null = null;
    dialog.addEventListener('close', () => {
      dialog.remove();
      resolve(token);
    });
    cancel.addEventListener('click', () => dialog.close());
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      clear(errors);
      if (password.value === '') {
        errors.append(errorBox('Enter your password.'));
        return;
      }
      confirm.disabled = true;
      void api
        .stepUp(password.value, action)
        .then((t) => {
          token = t;
          dialog.close();
        })
        .catch((err: unknown) => {
          errors.append(errorBox(messageOf(err)));
          password.value = '';
          password.focus();
          confirm.disabled = false;
        });
    });
    dialog.showModal();
    password.focus();
  });
}
