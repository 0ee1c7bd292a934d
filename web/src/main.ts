/**
 * Shell entry: session gate (setup → login → app), client-side routing, layout.
 */
import './styles.css';
import './responsive.css';
import { api, setStepUpHandler, setUnauthorizedHandler } from './api';
import { append, clear, h } from './dom';
import { parseRoute, type Route } from './routes';
import { isAdmin } from './stepup';
import { registerServiceWorker } from './swClient';
import { createTabHost } from './tabs';
import type { User } from './types';
import { loginView, setupView } from './views/auth';
import { appDetailView } from './views/appDetail';
import { catalogView } from './views/catalog';
import { errorBox, messageOf, type Ctx, type View } from './views/common';
import { frameView } from './views/frame';
import { historyView } from './views/history';
import { homeView } from './views/home';
import { progressView } from './views/progress';
import { confirmWithPassword } from './views/stepup';
import { systemView } from './views/system';
import { usersView } from './views/users';

const root = document.getElementById('app');
if (root === null) throw new Error('index.html lacks <div id="app">');

const announcer = h('div', { class: 'sr-only', 'aria-live': 'polite', role: 'status' });
const main = h('main', { id: 'main', tabindex: -1 });
const nav = h('nav', { 'aria-label': 'Main' });
const header = h('header', { class: 'top' }, h('a', { href: '/', class: 'brand' }, 'Bloud'), nav);
root.append(h('a', { href: '#main', class: 'skip' }, 'Skip to content'), header, main, announcer);

let setupRequired = false;
let current: View | null = null;
let booted = false;

const ctx: Ctx = {
  user: null,
  navigate(path, opts = {}) {
    if (opts.replace) history.replaceState(null, '', path);
    else history.pushState(null, '', path);
    void route();
  },
  replaceUrl(path) {
    history.replaceState(null, '', path);
  },
  async refreshSession() {
    const status = await api.setupStatus();
    setupRequired = status.setupRequired;
    ctx.user = setupRequired ? null : await api.me();
    renderNav();
  },
  announce(text) {
    announcer.textContent = '';
    // A fresh text node after a tick is announced even when the text repeats.
    setTimeout(() => {
      announcer.textContent = text;
    }, 50);
  },
};

// Open apps keep their frames across routes (tabs.ts): the host's elements are never re-parented.
const tabs = createTabHost(ctx);
header.after(tabs.strip);
main.after(tabs.frames);

setUnauthorizedHandler(() => {
  ctx.user = null;
  if (location.pathname !== '/login') {
    ctx.navigate(`/login?next=${encodeURIComponent(location.pathname + location.search)}`, { replace: true });
  }
});

// Destructive and account actions ask for the password again (views/stepup.ts).
setStepUpHandler(confirmWithPassword);

function renderNav(): void {
  clear(nav);
  if (ctx.user === null) return;
  const here = location.pathname;
  const link = (href: string, label: string, active: boolean) =>
    h('a', { href, 'aria-current': active ? 'page' : null }, label);
  append(nav, [
    link('/', 'Home', here === '/'),
    isAdmin(ctx.user) ? link('/catalog', 'Catalog', here.startsWith('/catalog')) : null,
    isAdmin(ctx.user) ? link('/users', 'Users', here.startsWith('/users')) : null,
    link('/system', 'System', here.startsWith('/system')),
    h('span', { class: 'who' }, ctx.user.username),
    h(
      'button',
      {
        type: 'button',
        class: 'small',
        onclick: () =>
          void api
            .logout()
            .catch(() => undefined)
            .finally(() => {
              ctx.user = null;
              ctx.navigate('/login', { replace: true });
            }),
      },
      'Sign out',
    ),
  ]);
}

/** The route to show instead when the session does not allow `r`. */
function gate(r: Route): string | null {
  if (setupRequired) return r.name === 'setup' ? null : '/setup';
  if (r.name === 'setup') return '/';
  if (ctx.user === null) {
    return r.name === 'login' ? null : `/login?next=${encodeURIComponent(location.pathname + location.search + location.hash)}`;
  }
  if (r.name === 'login') return r.next ?? '/';
  // Members manage nothing (the agent refuses it too); their home is their apps.
  if (!isAdmin(ctx.user) && (r.name === 'catalog' || r.name === 'app-detail' || r.name === 'users' || r.name === 'progress' || r.name === 'history')) return '/';
  return null;
}

function mount(r: Route): View {
  switch (r.name) {
    case 'setup':
      return setupView(ctx);
    case 'login':
      return loginView(ctx, r.next);
    case 'home':
      return homeView(ctx);
    case 'catalog':
      return catalogView(ctx);
    case 'app-detail':
      return appDetailView(ctx, r.app);
    case 'users':
      return usersView(ctx);
    case 'system':
      return systemView(ctx);
    case 'history':
      return historyView(ctx);
    case 'progress':
      return progressView(ctx, r.app, r.op);
    case 'app':
      return frameView(ctx, tabs, r.app, r.rest);
    case 'not-found':
      return {
        el: h('section', {}, h('h1', {}, 'Not found'), h('p', {}, `Nothing lives at ${r.path}.`), h('a', { href: '/', class: 'button' }, 'Home')),
        title: 'Not found',
      };
  }
}

async function route(): Promise<void> {
  const r = parseRoute(location.pathname, location.search, location.hash);
  const redirect = gate(r);
  if (redirect !== null) {
    history.replaceState(null, '', redirect);
    return route();
  }
  renderNav();
  // Another user may sign in next: nothing of this session's apps stays open.
  if (ctx.user === null) tabs.closeAll();
  if (current?.update?.(r)) return;
  current?.cleanup?.();
  const view = mount(r);
  current = view;
  document.body.classList.toggle('framed', r.name === 'app');
  clear(main);
  main.append(view.el);
  document.title = `${view.title} · Bloud`;
  // Move focus to the new page for keyboard and screen-reader users (not on first load).
  if (booted && r.name !== 'app') main.focus({ preventScroll: true });
}

/** Same-origin links to shell pages are routed here instead of reloading the page. */
document.addEventListener('click', (ev) => {
  if (ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
  const a = (ev.target as Element | null)?.closest?.('a');
  if (!a || a.target || a.hasAttribute('download')) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin) return;
  if (/^\/(api|auth|embed)(\/|$)/.test(url.pathname)) return;
  if (url.pathname === location.pathname && url.search === location.search && url.hash) return;
  ev.preventDefault();
  ctx.navigate(url.pathname + url.search + url.hash);
});

window.addEventListener('popstate', () => void route());

void (async () => {
  void registerServiceWorker();
  try {
    await ctx.refreshSession();
  } catch (err) {
    clear(main);
    main.append(
      h('section', { class: 'center' }, h('h1', {}, 'Bloud is not reachable'), errorBox(messageOf(err)), h('button', { type: 'button', onclick: () => location.reload() }, 'Try again')),
    );
    return;
  }
  await route();
  booted = true;
})();
