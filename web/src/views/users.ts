import { api } from '../api';
import { clear, h } from '../dom';
import type { InstalledApp, Role, UserInfo } from '../types';
import { validateNewUser } from './auth';
import { errorBox, loading, messageOf, type Ctx, type View } from './common';
import { rememberUserNames } from './stepup';

/** The apps offered as checkboxes: installed ones, plus any a user was given that are gone now. */
export function accessChoices(installed: InstalledApp[], users: UserInfo[]): Array<{ name: string; label: string }> {
  const labels = new Map<string, string>();
  for (const a of installed) if (!a.is_system) labels.set(a.name, a.display_name || a.name);
  for (const u of users) for (const a of u.apps) if (!labels.has(a)) labels.set(a, `${a} (not installed)`);
  return [...labels].map(([name, label]) => ({ name, label })).sort((a, b) => a.label.localeCompare(b.label));
}

/** A small modal form; resolves with the form's values, or null when cancelled. */
function formDialog(title: string, fields: HTMLElement[], confirmLabel: string, check: () => string | null): Promise<boolean> {
  const id = `dlg-${Math.random().toString(36).slice(2)}`;
  const errors = h('div', { 'aria-live': 'assertive' });
  const cancel = h('button', { type: 'button' }, 'Cancel');
  const form = h('form', {}, h('h2', { id }, title), ...fields, errors, h('div', { class: 'actions' }, cancel, h('button', { type: 'submit', class: 'primary' }, confirmLabel)));
  const dialog = h('dialog', { 'aria-labelledby': id }, form);
  document.body.append(dialog);
  return new Promise((resolve) => {
    let ok = false;
    dialog.addEventListener('close', () => {
      dialog.remove();
      resolve(ok);
    });
    cancel.addEventListener('click', () => dialog.close());
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      clear(errors);
      const problem = check();
      if (problem !== null) {
        errors.append(errorBox(problem));
        return;
      }
      ok = true;
      dialog.close();
    });
    dialog.showModal();
  });
}

function field(id: string, label: string, input: HTMLElement): HTMLElement {
  input.id = id;
  return h('div', { class: 'field' }, h('label', { for: id }, label), input);
}

function roleSelect(id: string, value: Role, label?: string): HTMLSelectElement {
  const sel = h(
    'select',
    { id, 'aria-label': label ?? null },
    h('option', { value: 'member', selected: value === 'member' }, 'Member'),
    h('option', { value: 'admin', selected: value === 'admin' }, 'Admin'),
  );
  return sel;
}

export function usersView(ctx: Ctx): View {
  const body = h('div', {}, loading('Loading users…'));
  const status = h('div', { 'aria-live': 'polite' });

  const act = async (what: () => Promise<unknown>, done: string) => {
    clear(status);
    try {
      await what();
      ctx.announce(done);
      status.append(h('p', { class: 'muted', role: 'status' }, done));
    } catch (err) {
      status.append(errorBox(messageOf(err)));
    }
    await load();
  };

  const row = (u: UserInfo, choices: Array<{ name: string; label: string }>): HTMLElement => {
    const me = ctx.user !== null && String(ctx.user.id) === u.id;
    const role = roleSelect(`role-${u.id}`, u.role, `Role of ${u.username}`);
    role.addEventListener('change', () => void act(() => api.setRole(u.id, u.username, role.value as Role), `${u.username} is now ${role.value === 'admin' ? 'an admin' : 'a member'}.`));
    let access: HTMLElement;
    if (u.role === 'admin') {
      access = h('p', { class: 'muted small' }, 'All apps (admin)');
    } else if (choices.length === 0) {
      access = h('p', { class: 'muted small' }, 'No apps installed yet.');
    } else {
      const boxes = choices.map((c) => {
        const box = h('input', { type: 'checkbox', value: c.name, checked: u.apps.includes(c.name) });
        return { box, el: h('label', { class: 'radio' }, box, ` ${c.label}`) };
      });
      access = h(
        'fieldset',
        {},
        h('legend', {}, `Apps ${u.username} may open`),
        boxes.map((b) => b.el),
        h(
          'button',
          {
            type: 'button',
            class: 'small',
            onclick: () =>
              void act(
                () => api.setApps(u.id, u.username, boxes.filter((b) => b.box.checked).map((b) => b.box.value)),
                `Saved the apps of ${u.username}.`,
              ),
          },
          'Save access',
        ),
      );
    }
    const setPassword = () =>
      void (async () => {
        const pw = h('input', { type: 'password', autocomplete: 'new-password', minlength: 8 });
        const again = h('input', { type: 'password', autocomplete: 'new-password', minlength: 8 });
        const ok = await formDialog(
          `New password for ${u.username}`,
          [field(`pw-${u.id}`, 'New password', pw), field(`pw2-${u.id}`, 'Repeat the password', again), h('p', { class: 'muted small' }, me ? 'Your other sessions end.' : `${u.username} is signed out everywhere.`)],
          'Set password',
          () => validateNewUser(u.username, pw.value, again.value),
        );
        if (ok) await act(() => api.setPassword(u.id, u.username, pw.value), `New password set for ${u.username}.`);
      })();
    return h(
      'article',
      { class: 'card user-card', 'aria-label': u.username },
      h('div', { class: 'app-card-head' }, h('h3', {}, u.username, me ? h('span', { class: 'muted' }, ' (you)') : null), role),
      access,
      h(
        'div',
        { class: 'actions' },
        h('button', { type: 'button', class: 'small', onclick: setPassword }, 'Set password'),
        h('button', { type: 'button', class: 'small', onclick: () => void act(() => api.removeUser(u.id, u.username), `Removed ${u.username}.`) }, 'Remove'),
      ),
    );
  };

  const load = async () => {
    try {
      const [users, installed] = await Promise.all([api.users(), api.installed()]);
      rememberUserNames(users);
      const choices = accessChoices(installed, users);
      clear(body);
      body.append(h('ul', { class: 'catalog', role: 'list' }, users.map((u) => h('li', {}, row(u, choices)))));
    } catch (err) {
      clear(body);
      body.append(errorBox(messageOf(err)));
    }
  };

  const username = h('input', { autocomplete: 'off', maxlength: 30 });
  const password = h('input', { type: 'password', autocomplete: 'new-password', minlength: 8 });
  const role = roleSelect('new-role', 'member');
  const addErrors = h('div', { 'aria-live': 'assertive' });
  const add = h(
    'form',
    { class: 'card narrow', novalidate: true },
    h('h2', {}, 'Add a user'),
    h('p', { class: 'muted small' }, 'Members open only the apps you give them; admins manage apps and users.'),
    field('new-username', 'Username', username),
    field('new-password', 'Password', password),
    field('new-role', 'Role', role),
    addErrors,
    h('button', { type: 'submit', class: 'primary' }, 'Add user'),
  );
  add.addEventListener('submit', (ev) => {
    ev.preventDefault();
    clear(addErrors);
    const problem = validateNewUser(username.value, password.value, password.value);
    if (problem !== null) {
      addErrors.append(errorBox(problem));
      return;
    }
    const name = username.value;
    void act(async () => {
      await api.addUser(name, password.value, role.value as Role, []);
      username.value = '';
      password.value = '';
    }, `Added ${name}.`);
  });

  void load();
  return { el: h('section', {}, h('h1', {}, 'Users'), status, body, h('div', { style: 'margin-top: 1.5rem' }, add)), title: 'Users' };
}
