import { api } from '../api';
import { loginDestination } from '../routes';
import { clear, h } from '../dom';
import { errorBox, messageOf, type Ctx, type View } from './common';

const USERNAME = /^[A-Za-z0-9_]{3,30}$/;

function field(id: string, label: string, input: HTMLInputElement, hint?: string): HTMLElement {
  input.id = id;
  if (hint) input.setAttribute('aria-describedby', `${id}-hint`);
  return h('div', { class: 'field' }, h('label', { for: id }, label), input, hint ? h('p', { class: 'hint', id: `${id}-hint` }, hint) : null);
}

/** Local validation mirrors the agent's rules so the user hears about them before a round trip. */
export function validateNewUser(username: string, password: string, confirm: string): string | null {
  if (!USERNAME.test(username)) return 'The username needs 3 to 30 letters, digits or underscores.';
  if ([...password].length < 8) return 'The password needs at least 8 characters.';
  if (password !== confirm) return 'The two passwords differ.';
  return null;
}

export function setupView(ctx: Ctx): View {
  const username = h('input', { name: 'username', autocomplete: 'username', required: true, minlength: 3, maxlength: 30, pattern: '[A-Za-z0-9_]+' });
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'new-password', required: true, minlength: 8 });
  const confirm = h('input', { name: 'confirm', type: 'password', autocomplete: 'new-password', required: true, minlength: 8 });
  const errors = h('div', { 'aria-live': 'assertive' });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Create account');
  const form = h(
    'form',
    { class: 'card narrow', novalidate: true },
    h('h1', {}, 'Welcome to Bloud'),
    h('p', {}, 'Create the first account. It administers this Bloud.'),
    field('setup-username', 'Username', username, '3 to 30 letters, digits or underscores.'),
    field('setup-password', 'Password', password, 'At least 8 characters.'),
    field('setup-confirm', 'Repeat the password', confirm),
    errors,
    submit,
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    clear(errors);
    const problem = validateNewUser(username.value, password.value, confirm.value);
    if (problem !== null) {
      errors.append(errorBox(problem));
      return;
    }
    submit.disabled = true;
    void (async () => {
      try {
        const res = await api.createUser(username.value, password.value);
        if (!res.success) throw new Error(res.error ?? 'The account could not be created.');
        await api.login(username.value, password.value);
        ctx.announce('Account created, you are signed in.');
        await ctx.refreshSession();
        ctx.navigate('/', { replace: true });
      } catch (err) {
        errors.append(errorBox(messageOf(err)));
        submit.disabled = false;
      }
    })();
  });
  return { el: h('section', { class: 'center' }, form), title: 'Set up Bloud' };
}

export function loginView(ctx: Ctx, next: string | null): View {
  const username = h('input', { name: 'username', autocomplete: 'username', required: true });
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const errors = h('div', { 'aria-live': 'assertive' });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h(
    'form',
    { class: 'card narrow' },
    h('h1', {}, 'Sign in to Bloud'),
    field('login-username', 'Username', username),
    field('login-password', 'Password', password),
    errors,
    submit,
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    clear(errors);
    submit.disabled = true;
    void (async () => {
      try {
        await api.login(username.value, password.value);
        await ctx.refreshSession();
        if (ctx.user === null) throw new Error('Signed in, but the session was not kept. Are cookies blocked for this site?');
        const dest = loginDestination(next);
        if (dest.kind === 'document') location.replace(dest.path);
        else ctx.navigate(dest.path, { replace: true });
      } catch (err) {
        const msg = messageOf(err);
        errors.append(errorBox(/HTTP 401|nvalid|ncorrect|credentials/i.test(msg) ? 'Wrong username or password.' : msg));
        submit.disabled = false;
        password.select();
      }
    })();
  });
  return { el: h('section', { class: 'center' }, form), title: 'Sign in' };
}
