//! Install and removal plans over the integration graph (upstream `plan.go`), and the
//! resolution of an install into the set of apps to enable.
//!
//! Public API:
//! - [`plan_install`] → [`InstallPlan`] (`GET /api/apps/{name}/plan-install`)
//! - [`plan_remove`] → [`RemovePlan`] (`GET /api/apps/{name}/plan-remove`)
//! - [`resolve_install`] → [`ResolvedInstall`]: the integration map for the app (user choices,
//!   then auto-configuration, then defaults for required slots) and every app that must be
//!   enabled with it, dependencies first.
//!
//! Upstream's semantics with these deliberate differences: integrations are visited in name order
//! and dependents sorted, so plans are deterministic (upstream iterates Go maps); empty lists are
//! `[]`, never `null`; a compatible app that is not in the catalog is not offered; an install
//! whose required slot has no installable option gets `canInstall: false` with a blocker
//! (upstream always said true); a required slot with no default but exactly one option uses that
//! option instead of silently staying empty; dependencies of dependencies are pulled in too.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::catalog::{AppMeta, Catalog, CompatibleApp, Integration};

/// `GET /api/apps/{name}/plan-install`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstallPlan {
    pub app: String,
    pub can_install: bool,
    pub blockers: Vec<String>,
    /// Slots the user has to (or may) decide.
    pub choices: Vec<IntegrationChoice>,
    /// Slots filled automatically: exactly one compatible app installed, or all of them for a
    /// `multi` slot.
    pub auto_config: Vec<ConfigTask>,
    /// Installed apps that will be configured to use the new app.
    pub dependents: Vec<ConfigTask>,
    /// How people will sign in to the app through Bloud ([`sign_in`]); filled by the API,
    /// which knows `publicApps`.
    pub sign_in: Vec<SignIn>,
}

/// One way the app is connected to Bloud's accounts, with the sentence the install dialog shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignIn {
    /// `login`: the proxy asks for the Bloud session before the app is reached; `oidc`: the
    /// app signs users in with the box's OpenID Connect provider (a client is registered at
    /// install).
    pub kind: &'static str,
    pub text: &'static str,
}

pub const SIGN_IN_LOGIN: SignIn = SignIn {
    kind: "login",
    text: "Protected by Bloud's login",
};
pub const SIGN_IN_OIDC: SignIn = SignIn {
    kind: "oidc",
    text: "Sign in with your Bloud account (OpenID Connect)",
};

/// What installing `meta` connects to Bloud's accounts, and nothing more: the login check
/// for every app with a route under `/embed/` that is not in `publicApps`, and an OpenID
/// Connect client for `sso.strategy: native-oidc`. LDAP apps get neither (the agent has no
/// directory), so the dialog does not promise it.
pub fn sign_in(meta: &AppMeta, public: bool) -> Vec<SignIn> {
    let mut out = Vec::new();
    if meta.is_routable() && !public {
        out.push(SIGN_IN_LOGIN);
    }
    if crate::oidc::app_clients::wants_client(meta) {
        out.push(SIGN_IN_OIDC);
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationChoice {
    pub integration: String,
    pub required: bool,
    pub installed: Vec<ChoiceOption>,
    pub available: Vec<ChoiceOption>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recommended: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChoiceOption {
    pub app: String,
    pub default: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub category: String,
}

/// `target` uses `source` for `integration`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ConfigTask {
    pub target: String,
    pub source: String,
    pub integration: String,
}

/// `GET /api/apps/{name}/plan-remove`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RemovePlan {
    pub app: String,
    pub can_remove: bool,
    /// `"<dependent> requires a <integration>"` for each installed app left without a provider.
    pub blockers: Vec<String>,
    /// Installed apps that lose this integration (sorted, no duplicates).
    pub will_unconfigure: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// HTTP 404.
    #[error("unknown app: {0}")]
    UnknownApp(String),
    /// A request names an integration the app does not have (HTTP 400).
    #[error("{app} has no integration `{integration}` (it has: {known})")]
    UnknownIntegration {
        app: String,
        integration: String,
        known: String,
    },
    /// A choice names an app that cannot fill the slot (HTTP 400).
    #[error("{app}: `{chosen}` cannot be its {integration}; choose one of: {options}")]
    InvalidChoice {
        app: String,
        integration: String,
        chosen: String,
        options: String,
    },
    /// A required slot has several options and no default: the user must choose (HTTP 400).
    #[error("{app} requires a {integration}: choose one of {options} (install body {{\"choices\":{{\"{integration}\":\"<app>\"}}}})")]
    ChoiceNeeded {
        app: String,
        integration: String,
        options: String,
    },
    /// A required slot has no installable option at all (HTTP 400).
    #[error("{app} requires a {integration}, but no compatible app is in the catalog")]
    Unsatisfiable { app: String, integration: String },
    /// Apps require each other in a loop (a catalog bug).
    #[error("integration cycle in the catalog: {0}")]
    Cycle(String),
}

fn get<'c>(catalog: &'c Catalog, app: &str) -> Result<&'c AppMeta, PlanError> {
    catalog
        .get(app)
        .ok_or_else(|| PlanError::UnknownApp(app.to_string()))
}

fn option(c: &CompatibleApp) -> ChoiceOption {
    ChoiceOption {
        app: c.app.clone(),
        default: c.default,
        category: c.category.clone(),
    }
}

/// Compatible apps that exist in the catalog, split into (installed, not installed), in
/// metadata order.
fn split_compatible<'i>(
    catalog: &Catalog,
    integration: &'i Integration,
    installed: &BTreeSet<String>,
) -> (Vec<&'i CompatibleApp>, Vec<&'i CompatibleApp>) {
    integration
        .compatible
        .iter()
        .filter(|c| catalog.contains(&c.app))
        .partition(|c| installed.contains(&c.app))
}

fn recommended(installed: &[&CompatibleApp], available: &[&CompatibleApp]) -> Option<String> {
    installed
        .iter()
        .chain(available)
        .find(|c| c.default)
        .map(|c| c.app.clone())
}

/// Installed apps that list `app` as compatible for one of their integrations.
fn dependents(catalog: &Catalog, installed: &BTreeSet<String>, app: &str) -> Vec<ConfigTask> {
    let mut tasks: Vec<ConfigTask> = catalog
        .apps()
        .filter(|other| other.name != app && installed.contains(&other.name))
        .flat_map(|other| {
            other
                .integrations
                .iter()
                .filter(|(_, i)| i.compatible.iter().any(|c| c.app == app))
                .map(|(integration, _)| ConfigTask {
                    target: other.name.clone(),
                    source: app.to_string(),
                    integration: integration.clone(),
                })
        })
        .collect();
    tasks.sort();
    tasks
}

/// What installing `app` involves, given the installed set (all apps in the database,
/// including system apps).
pub fn plan_install(
    catalog: &Catalog,
    installed: &BTreeSet<String>,
    app: &str,
) -> Result<InstallPlan, PlanError> {
    let meta = get(catalog, app)?;
    let mut plan = InstallPlan {
        app: app.to_string(),
        can_install: true,
        blockers: Vec::new(),
        choices: Vec::new(),
        auto_config: Vec::new(),
        dependents: dependents(catalog, installed, app),
        sign_in: Vec::new(),
    };
    for (name, integration) in &meta.integrations {
        let (inst, avail) = split_compatible(catalog, integration, installed);
        let choice = || IntegrationChoice {
            integration: name.clone(),
            required: integration.required,
            installed: inst.iter().copied().map(option).collect(),
            available: avail.iter().copied().map(option).collect(),
            recommended: recommended(&inst, &avail),
        };
        let auto = |c: &CompatibleApp| ConfigTask {
            target: app.to_string(),
            source: c.app.clone(),
            integration: name.clone(),
        };
        match inst.len() {
            0 if integration.required => {
                if avail.is_empty() {
                    plan.can_install = false;
                    plan.blockers.push(
                        PlanError::Unsatisfiable {
                            app: app.to_string(),
                            integration: name.clone(),
                        }
                        .to_string(),
                    );
                }
                plan.choices.push(choice());
            }
            0 => {}
            1 => plan.auto_config.push(auto(inst[0])),
            _ if integration.multi => plan.auto_config.extend(inst.iter().map(|c| auto(c))),
            _ => plan.choices.push(choice()),
        }
    }
    Ok(plan)
}

/// What removing `app` involves. Removal is blocked when an installed app requires an
/// integration that only `app` fills among the installed apps.
pub fn plan_remove(
    catalog: &Catalog,
    installed: &BTreeSet<String>,
    app: &str,
) -> Result<RemovePlan, PlanError> {
    get(catalog, app)?;
    let mut plan = RemovePlan {
        app: app.to_string(),
        can_remove: true,
        blockers: Vec::new(),
        will_unconfigure: Vec::new(),
    };
    for task in dependents(catalog, installed, app) {
        let Some(integration) = catalog
            .get(&task.target)
            .and_then(|t| t.integrations.get(&task.integration))
        else {
            continue;
        };
        let has_alternative = integration
            .compatible
            .iter()
            .any(|c| c.app != app && installed.contains(&c.app));
        if integration.required && !has_alternative {
            plan.can_remove = false;
            plan.blockers
                .push(format!("{} requires a {}", task.target, task.integration));
        } else if !plan.will_unconfigure.contains(&task.target) {
            plan.will_unconfigure.push(task.target);
        }
    }
    Ok(plan)
}

/// One app to enable, with the integration sources it was configured with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedApp {
    pub name: String,
    /// integration name → source app.
    pub integrations: BTreeMap<String, String>,
}

/// An install resolved down to concrete apps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedInstall {
    pub app: String,
    /// Apps to enable in this transaction, dependencies before the apps that need them; the
    /// requested app is last. Already-installed dependencies are not repeated.
    pub apps: Vec<PlannedApp>,
}

impl ResolvedInstall {
    /// Integration map of the requested app.
    pub fn integrations(&self) -> BTreeMap<String, String> {
        self.apps
            .iter()
            .find(|a| a.name == self.app)
            .map(|a| a.integrations.clone())
            .unwrap_or_default()
    }

    /// Names of the apps enabled along with the requested one.
    pub fn dependencies(&self) -> impl Iterator<Item = &str> {
        self.apps
            .iter()
            .filter(|a| a.name != self.app)
            .map(|a| a.name.as_str())
    }
}

fn option_list(options: &[&CompatibleApp]) -> String {
    options
        .iter()
        .map(|c| c.app.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The integration map of one app: `choices` (user), then auto-configuration (overrides them,
/// as upstream), then for required slots still empty the recommended app, or the only option.
fn resolve_integrations(
    catalog: &Catalog,
    installed: &BTreeSet<String>,
    meta: &AppMeta,
    choices: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, PlanError> {
    let mut out = BTreeMap::new();
    for (integration, chosen) in choices {
        let Some(slot) = meta.integrations.get(integration) else {
            return Err(PlanError::UnknownIntegration {
                app: meta.name.clone(),
                integration: integration.clone(),
                known: meta
                    .integrations
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        let valid = slot
            .compatible
            .iter()
            .any(|c| &c.app == chosen && catalog.contains(&c.app));
        if !valid {
            let (inst, avail) = split_compatible(catalog, slot, installed);
            let all: Vec<&CompatibleApp> = inst.into_iter().chain(avail).collect();
            return Err(PlanError::InvalidChoice {
                app: meta.name.clone(),
                integration: integration.clone(),
                chosen: chosen.clone(),
                options: option_list(&all),
            });
        }
        out.insert(integration.clone(), chosen.clone());
    }
    for (integration, slot) in &meta.integrations {
        let (inst, avail) = split_compatible(catalog, slot, installed);
        if let [only] = inst.as_slice() {
            out.insert(integration.clone(), only.app.clone());
        } else if inst.len() > 1 && slot.multi {
            // The state keeps one source per slot; the first compatible one stands for all.
            out.insert(integration.clone(), inst[0].app.clone());
        }
        if !slot.required || out.contains_key(integration) {
            continue;
        }
        let all: Vec<&CompatibleApp> = inst.iter().chain(&avail).copied().collect();
        let pick = recommended(&inst, &avail).or_else(|| match all.as_slice() {
            [only] => Some(only.app.clone()),
            _ => None,
        });
        match pick {
            Some(app) => {
                out.insert(integration.clone(), app);
            }
            None if all.is_empty() => {
                return Err(PlanError::Unsatisfiable {
                    app: meta.name.clone(),
                    integration: integration.clone(),
                })
            }
            None => {
                return Err(PlanError::ChoiceNeeded {
                    app: meta.name.clone(),
                    integration: integration.clone(),
                    options: option_list(&all),
                })
            }
        }
    }
    Ok(out)
}

/// Resolves installing `app` with the user's `choices` (integration → app) into the apps to
/// enable, dependencies first.
pub fn resolve_install(
    catalog: &Catalog,
    installed: &BTreeSet<String>,
    app: &str,
    choices: &BTreeMap<String, String>,
) -> Result<ResolvedInstall, PlanError> {
    get(catalog, app)?;
    let mut state = Resolver {
        catalog,
        // Apps enabled by this transaction count as installed for the ones resolved after them.
        available: installed.clone(),
        in_progress: Vec::new(),
        done: BTreeSet::new(),
        out: Vec::new(),
    };
    state.visit(app, choices)?;
    Ok(ResolvedInstall {
        app: app.to_string(),
        apps: state.out,
    })
}

struct Resolver<'c> {
    catalog: &'c Catalog,
    available: BTreeSet<String>,
    in_progress: Vec<String>,
    done: BTreeSet<String>,
    out: Vec<PlannedApp>,
}

impl Resolver<'_> {
    fn visit(&mut self, app: &str, choices: &BTreeMap<String, String>) -> Result<(), PlanError> {
        if let Some(pos) = self.in_progress.iter().position(|a| a == app) {
            let mut cycle = self.in_progress[pos..].to_vec();
            cycle.push(app.to_string());
            return Err(PlanError::Cycle(cycle.join(" -> ")));
        }
        let meta = get(self.catalog, app)?;
        self.in_progress.push(app.to_string());
        let integrations = resolve_integrations(self.catalog, &self.available, meta, choices)?;
        let no_choices = BTreeMap::new();
        for source in integrations.values() {
            let pending = !self.available.contains(source) && !self.done.contains(source);
            if pending || self.in_progress.contains(source) {
                self.visit(source, &no_choices)?;
            }
        }
        self.in_progress.pop();
        self.done.insert(app.to_string());
        self.available.insert(app.to_string());
        self.out.push(PlannedApp {
            name: app.to_string(),
            integrations,
        });
        Ok(())
    }
}
