import './catalog.css';
import { api } from '../api';
import { clear, h } from '../dom';
import { startInstall, startUninstall } from '../ops';
import { choiceOptions, choicesBody, connections, extraInstalls, initialChoices, missingRequired } from '../plan';
import { categoriesOf, filterCatalog } from '../catalogFilter';
import { appDetailPath, shellAppPath } from '../routes';
import type { CatalogApp, InstallPlan, InstalledApp, RemovePlan } from '../types';
import { appIcon, errorBox, loading, messageOf, statusBadge, type Ctx, type View } from './common';

export function catalogView(ctx: Ctx): View {
  const body = h('div', {}, loading('Loading the catalog…'));
  const params = new URLSearchParams(location.search);
  const search = h('input', { type: 'search', id: 'catalog-search', name: 'q', autocomplete: 'off', value: params.get('q') ?? '' });
  const category = h('select', { id: 'catalog-category', name: 'category' }, h('option', { value: '' }, 'All categories'));
  const count = h('p', { class: 'muted small', role: 'status' });
  const tools = h(
    'form',
    { class: 'catalog-tools', role: 'search', 'aria-label': 'Catalog', onsubmit: (ev: Event) => ev.preventDefault() },
    h('div', { class: 'field' }, h('label', { for: 'catalog-search' }, 'Search apps'), search),
    h('div', { class: 'field' }, h('label', { for: 'catalog-category' }, 'Category'), category),
  );

  void (async () => {
    try {
      const [apps, installed] = await Promise.all([api.catalog(), api.installed()]);
      const byName = new Map(installed.map((a) => [a.name, a]));
      const names = new Map(apps.map((a) => [a.name, a.displayName]));
      clear(body);
      const visible = apps.filter((a) => !a.isSystem);
      if (visible.length === 0) {
        body.append(h('p', {}, 'The catalog is empty. Check the agent’s appsDir.'));
        return;
      }
      for (const cat of categoriesOf(visible)) category.append(h('option', { value: cat }, capitalise(cat)));
      category.value = params.get('category') ?? '';
      const render = () => {
        const q = search.value;
        const cat = category.value;
        // The filter is in the URL, so a reload or the way back from a detail page keeps it.
        const url = new URLSearchParams();
        if (q !== '') url.set('q', q);
        if (cat !== '') url.set('category', cat);
        const qs = url.toString();
        ctx.replaceUrl(`/catalog${qs ? `?${qs}` : ''}`);
        const shown = filterCatalog(visible, q, cat);
        count.textContent = shown.length === visible.length ? `${visible.length} apps` : `${shown.length} of ${visible.length} apps`;
        clear(body);
        if (shown.length === 0) {
          body.append(h('p', { class: 'empty' }, 'No app matches. Try another word or all categories.'));
          return;
        }
        for (const cat of categoriesOf(shown)) {
          const inCat = shown.filter((a) => a.category === cat).sort((a, b) => a.displayName.localeCompare(b.displayName));
          const headingId = `cat-${cat}`;
          body.append(
            h(
              'section',
              { 'aria-labelledby': headingId },
              h('h2', { id: headingId, class: 'category' }, cat),
              h('ul', { class: 'catalog', role: 'list' }, inCat.map((a) => h('li', {}, card(ctx, a, byName.get(a.name), names)))),
            ),
          );
        }
      };
      search.addEventListener('input', render);
      category.addEventListener('change', render);
      render();
    } catch (err) {
      clear(body);
      body.append(errorBox(messageOf(err)));
    }
  })();

  return { el: h('section', {}, h('h1', {}, 'Catalog'), tools, count, body), title: 'Catalog' };
}

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** Install, or open, progress and uninstall, as the app's state allows (catalog card, detail page). */
export function appActions(ctx: Ctx, app: CatalogApp, row: InstalledApp | undefined, names: Map<string, string>): HTMLElement {
  const actions = h('div', { class: 'actions' });
  if (row === undefined) {
    // Data left behind by an earlier uninstall; the password dialog doubles as the confirmation.
    const clearData = () =>
      void api
        .clearData(app.name)
        .then(() => ctx.announce(`Deleted the data of ${app.displayName}.`))
        .catch((err: unknown) => ctx.announce(messageOf(err)));
    actions.append(
      h('button', { type: 'button', class: 'small', onclick: clearData }, 'Delete data'),
      h('button', { type: 'button', class: 'primary', onclick: () => void openInstall(ctx, app, names) }, 'Install'),
    );
  } else {
    if (row.status === 'running') actions.append(h('a', { href: shellAppPath(app.name), class: 'button primary' }, 'Open'));
    else if (row.status === 'installing' || row.status === 'starting') {
      actions.append(h('a', { href: `/install/${encodeURIComponent(app.name)}`, class: 'button' }, 'Progress'));
    }
    actions.append(h('button', { type: 'button', onclick: () => void openRemove(ctx, app) }, 'Uninstall'));
  }
  return actions;
}

function card(ctx: Ctx, app: CatalogApp, row: InstalledApp | undefined, names: Map<string, string>): HTMLElement {
  return h(
    'article',
    { class: 'card app-card' },
    h(
      'div',
      { class: 'app-card-head' },
      appIcon(app.name, app.displayName),
      h('h3', {}, h('a', { href: appDetailPath(app.name) }, app.displayName)),
      row ? statusBadge(row.status) : null,
    ),
    h('p', {}, app.description),
    appActions(ctx, app, row, names),
  );
}

/** A modal dialog; resolves with the button pressed ('' when dismissed). */
export function modal(title: string, content: HTMLElement, confirmLabel: string, canConfirm: () => boolean): { dialog: HTMLDialogElement; result: Promise<boolean>; refresh(): void } {
  const id = `dlg-${Math.random().toString(36).slice(2)}`;
  const confirm = h('button', { type: 'submit', value: 'ok', class: 'primary' }, confirmLabel);
  const dialog = h(
    'dialog',
    { 'aria-labelledby': id },
    h('form', { method: 'dialog' }, h('h2', { id }, title), content, h('div', { class: 'actions' }, h('button', { type: 'submit', value: 'cancel' }, 'Cancel'), confirm)),
  );
  const refresh = () => {
    confirm.disabled = !canConfirm();
  };
  document.body.append(dialog);
  const result = new Promise<boolean>((resolve) => {
    dialog.addEventListener('close', () => {
      resolve(dialog.returnValue === 'ok');
      dialog.remove();
    });
  });
  refresh();
  dialog.showModal();
  return { dialog, result, refresh };
}

function appList(items: string[]): HTMLElement {
  return h('ul', {}, items.map((i) => h('li', {}, i)));
}

export async function openInstall(ctx: Ctx, app: CatalogApp, names: Map<string, string>): Promise<void> {
  let plan: InstallPlan;
  try {
    plan = await api.planInstall(app.name);
  } catch (err) {
    ctx.announce(messageOf(err));
    window.alert(messageOf(err));
    return;
  }
  const label = (n: string) => names.get(n) ?? n;
  const choices = initialChoices(plan);
  const content = h('div', { class: 'plan' });
  const extra = h('div', { 'aria-live': 'polite' });
  let dlg: ReturnType<typeof modal> | null = null;
  const showExtra = () => {
    clear(extra);
    const more = extraInstalls(plan, choices);
    if (more.length > 0) extra.append(h('p', {}, 'Will also install:'), appList(more.map(label)));
    dlg?.refresh();
  };

  if (plan.blockers && plan.blockers.length > 0) content.append(errorBox('This app cannot be installed:'), appList(plan.blockers));
  for (const c of plan.choices ?? []) {
    const group = `choice-${c.integration}`;
    const opts = choiceOptions(c);
    const radios = opts.map((o) => {
      const input = h('input', { type: 'radio', name: group, value: o.app, checked: choices[c.integration] === o.app });
      input.addEventListener('change', () => {
        choices[c.integration] = o.app;
        showExtra();
      });
      return h('label', { class: 'radio' }, input, ` ${label(o.app)}`, o.installed ? h('span', { class: 'muted' }, ' (installed)') : null, o.recommended ? h('span', { class: 'muted' }, ' (recommended)') : null);
    });
    if (!c.required) {
      const none = h('input', { type: 'radio', name: group, value: '', checked: choices[c.integration] === '' });
      none.addEventListener('change', () => {
        choices[c.integration] = '';
        showExtra();
      });
      radios.push(h('label', { class: 'radio' }, none, ' None'));
    }
    content.append(h('fieldset', {}, h('legend', {}, `${c.integration} (${c.required ? 'required' : 'optional'})`), radios));
  }
  const connected = connections(plan, label);
  if (connected.length > 0) {
    content.append(h('p', {}, 'Will connect automatically:'), appList(connected));
  }
  if (plan.dependents && plan.dependents.length > 0) {
    content.append(h('p', {}, 'Will reconfigure:'), appList(plan.dependents.map((t) => `${label(t.target)} (${t.integration})`)));
  }
  content.append(extra);
  if ((plan.choices ?? []).length === 0 && connected.length === 0 && !plan.dependents?.length) {
    content.append(h('p', {}, `${app.displayName} has no integrations to set up.`));
  }
  content.append(h('p', { class: 'muted small' }, 'Installing rebuilds the system; this can take several minutes.'));
  dlg = modal(`Install ${app.displayName}`, content, 'Install', () => plan.canInstall !== false && missingRequired(plan, choices).length === 0);
  showExtra();
  if (!(await dlg.result)) return;
  void startInstall(app.name, choicesBody(choices)).catch((err: unknown) => ctx.announce(messageOf(err)));
  ctx.navigate(`/install/${encodeURIComponent(app.name)}`);
}

/** The uninstall dialog (plan, delete-data choice); resolves with whether the removal started. */
export async function openRemove(ctx: Ctx, app: Pick<CatalogApp, 'name' | 'displayName'>): Promise<boolean> {
  let plan: RemovePlan;
  try {
    plan = await api.planRemove(app.name);
  } catch (err) {
    ctx.announce(messageOf(err));
    window.alert(messageOf(err));
    return false;
  }
  const clearData = h('input', { type: 'checkbox', id: 'clear-data' });
  const content = h('div', { class: 'plan' });
  if (!plan.canRemove) content.append(errorBox(`${app.displayName} cannot be removed now:`), appList(plan.blockers ?? []));
  if (plan.willUnconfigure && plan.willUnconfigure.length > 0) content.append(h('p', {}, 'These apps will lose their connection to it:'), appList(plan.willUnconfigure));
  content.append(h('div', { class: 'field-inline' }, clearData, h('label', { for: 'clear-data' }, ' Also delete its data (cannot be undone)')));
  const dlg = modal(`Uninstall ${app.displayName}`, content, 'Uninstall', () => plan.canRemove);
  if (!(await dlg.result)) return false;
  void startUninstall(app.name, clearData.checked).catch((err: unknown) => ctx.announce(messageOf(err)));
  ctx.navigate(`/install/${encodeURIComponent(app.name)}?op=uninstall`);
  return true;
}
