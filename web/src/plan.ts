/** Presenting an install plan: default choices and what else the install brings in. */
import type { CompatibleApp, InstallPlan, IntegrationChoice } from './types';

export interface ChoiceOption {
  app: string;
  installed: boolean;
  recommended: boolean;
}

export function choiceOptions(c: IntegrationChoice): ChoiceOption[] {
  const seen = new Set<string>();
  const out: ChoiceOption[] = [];
  const add = (list: CompatibleApp[] | null, installed: boolean) => {
    for (const x of list ?? []) {
      if (seen.has(x.app)) continue;
      seen.add(x.app);
      out.push({ app: x.app, installed, recommended: x.app === c.recommended });
    }
  };
  add(c.installed, true);
  add(c.available, false);
  return out;
}

/**
 * The preselected answer for each choice: the agent's recommendation, else an installed app,
 * else (only when required) the first candidate. Optional choices default to none ('').
 */
export function initialChoices(plan: InstallPlan): Record<string, string> {
  const out: Record<string, string> = {};
  for (const c of plan.choices ?? []) {
    const opts = choiceOptions(c);
    const pick = opts.find((o) => o.recommended) ?? opts.find((o) => o.installed) ?? (c.required ? opts[0] : undefined);
    out[c.integration] = pick?.app ?? '';
  }
  return out;
}

/** Apps the install will add besides the one asked for (chosen and not yet installed). */
export function extraInstalls(plan: InstallPlan, choices: Record<string, string>): string[] {
  const installed = new Set<string>();
  for (const c of plan.choices ?? []) for (const x of c.installed ?? []) installed.add(x.app);
  const extra = new Set<string>();
  for (const app of Object.values(choices)) if (app !== '' && !installed.has(app) && app !== plan.app) extra.add(app);
  return [...extra].sort();
}

/** The request body's `choices`: answered integrations only. */
export function choicesBody(choices: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(choices).filter(([, app]) => app !== ''));
}

/** A required choice left unanswered blocks the install. */
export function missingRequired(plan: InstallPlan, choices: Record<string, string>): string[] {
  return (plan.choices ?? []).filter((c) => c.required && !choices[c.integration]).map((c) => c.integration);
}

/** What the install dialog lists under "Will connect automatically": integrations filled with
 * installed apps, then what the agent says about signing in (its login check, an OpenID
 * Connect client). Only what the plan states, so the dialog promises nothing else. */
export function connections(plan: InstallPlan, label: (app: string) => string): string[] {
  return [
    ...(plan.autoConfig ?? []).map((t) => `${label(t.source)} as ${t.integration}`),
    ...(plan.signIn ?? []).map((s) => s.text),
  ];
}
