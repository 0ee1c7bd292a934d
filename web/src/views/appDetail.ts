/**
 * `/catalog/<app>`: what an app is before (or after) installing it: description, what it
 * connects to, its port, where its data lives, how people sign in to it.
 */
import { api } from '../api';
import { clear, h } from '../dom';
import { appDetailPath, shellAppPath } from '../routes';
import type { CatalogApp, InstalledApp } from '../types';
import { appActions } from './catalog';
import { appIcon, errorBox, loading, messageOf, statusBadge, type Ctx, type View } from './common';

/** Plain words for `sso.strategy`. */
export function ssoText(strategy: string | undefined): string {
  switch (strategy) {
    case 'forward-auth':
      return 'Bloud’s sign-in, in front of the app (forward auth): your Bloud account opens it.';
    case 'native-oidc':
      return 'Single sign-on with OpenID Connect: the app signs you in with your Bloud account (Authentik).';
    case 'ldap':
      return 'The app checks your Bloud account over LDAP (Authentik).';
    default:
      return 'None: the app keeps its own accounts.';
  }
}

/** Integration keys are camelCase identifiers (`downloadClient`); people read "download client". */
function words(key: string): string {
  return key.replace(/([a-z0-9])([A-Z])/g, '$1 $2').toLowerCase();
}

export function appDetailView(ctx: Ctx, name: string): View {
  const body = h('div', {}, loading(`Loading ${name}…`));
  const heading = h('h1', {}, name);
  const el = h('section', {}, h('p', { class: 'small' }, h('a', { href: '/catalog' }, '← Catalog')), body);
  const view: View = { el, title: name };

  void (async () => {
    try {
      const [app, catalog, installed] = await Promise.all([api.metadata(name), api.catalog(), api.installed()]);
      const names = new Map(catalog.map((a) => [a.name, a.displayName]));
      const label = (n: string) => names.get(n) ?? n;
      const row: InstalledApp | undefined = installed.find((a) => a.name === name);
      heading.textContent = app.displayName || name;
      document.title = `${heading.textContent} · Bloud`;
      clear(body);
      body.append(
        h('div', { class: 'detail-head' }, appIcon(app.name, app.displayName), heading, row ? statusBadge(row.status) : null),
        h('p', { class: 'detail-desc' }, app.description),
        appActions(ctx, app, row, names),
        facts(app, catalog, label),
      );
    } catch (err) {
      clear(body);
      body.append(heading, errorBox(messageOf(err)));
    }
  })();
  return view;
}

function facts(app: CatalogApp, catalog: CatalogApp[], label: (n: string) => string): HTMLElement {
  const dl = h('dl', { class: 'facts' });
  const fact = (term: string, ...value: Array<Node | string>) => dl.append(h('dt', {}, term), h('dd', {}, ...value));

  fact('Category', app.category);
  const integrations = Object.entries(app.integrations ?? {});
  fact(
    'Connects to',
    integrations.length === 0
      ? 'Nothing: it works on its own.'
      : h(
          'ul',
          {},
          integrations.map(([key, i]) =>
            h(
              'li',
              {},
              `${words(key)} (${i.required ? 'required' : 'optional'}): `,
              joinLinks((i.compatible ?? []).map((c) => ({ app: c.app, text: label(c.app) + (c.default ? ' (default)' : '') }))),
            ),
          ),
        ),
  );
  const users = catalog.filter((other) => Object.values(other.integrations ?? {}).some((i) => (i.compatible ?? []).some((c) => c.app === app.name)));
  if (users.length > 0) fact('Used by', joinLinks(users.map((u) => ({ app: u.name, text: u.displayName }))));
  fact('Port', app.port !== undefined ? `${app.port} on this host; opened through Bloud at ${shellAppPath(app.name)}` : 'None (no web page of its own)');
  fact('Data location', app.dataLocation ? h('code', {}, app.dataLocation) : 'Not reported by the agent');
  fact('Sign-in (SSO)', ssoText(app.sso?.strategy));
  return h('section', { 'aria-label': 'Details' }, dl);
}

function joinLinks(items: Array<{ app: string; text: string }>): DocumentFragment {
  const frag = document.createDocumentFragment();
  items.forEach((it, n) => {
    if (n > 0) frag.append(', ');
    frag.append(h('a', { href: appDetailPath(it.app) }, it.text));
  });
  return frag;
}
