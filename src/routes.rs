//! The one route registry: every configured webhook route, each account's drop-in route and
//! each account's erasure-deletion route, compiled once from the settings. Intake, the worker,
//! replay, erasure and `render` resolve through it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::config::{Mode, Settings};
use crate::credential::Credential;
use crate::mapping::RouteMapping;

/// Stored route name of an account's drop-in `/1/upload`: `_upload:<account>`.
pub const UPLOAD_PREFIX: &str = "_upload:";
/// Stored route name of the profile deletions an erasure queues for an account (`propagate`):
/// `_delete:<account>`; its bodies are CleverTap delete bodies (`{"identity": […]}`).
pub use crate::queue::DELETE_PREFIX;

/// A configured route: who may call it, which account it feeds, how its bodies render.
pub struct Route {
    pub name: String,
    pub account: String,
    /// Empty for a drop-in route (the account's passcode authenticates it).
    pub tokens: Vec<Credential>,
    pub mapping: Arc<RouteMapping>,
}

impl Route {
    /// True for an account's drop-in route.
    pub fn is_upload(&self) -> bool {
        self.name.starts_with(UPLOAD_PREFIX)
    }
}

/// Every route, by the name stored with its rows.
pub struct Routes {
    webhooks: HashMap<String, Route>,
    /// By account name.
    uploads: HashMap<String, Route>,
    /// By account name.
    deletes: HashMap<String, Route>,
}

impl Routes {
    /// Compiles every route's template and each account's passthrough route; every problem
    /// found, each naming its key, when any fails. Reads template files, opens no queue.
    pub fn compile(settings: &Settings) -> Result<Self, Vec<String>> {
        let mut problems = crate::mapping::check_settings(&settings.mapping);
        let mut webhooks = HashMap::new();
        for (name, route) in &settings.routes {
            match compile_route(settings, name, route) {
                Ok(compiled) => {
                    webhooks.insert(name.clone(), compiled);
                }
                Err(mut errors) => problems.append(&mut errors),
            }
        }
        let mut uploads = HashMap::new();
        let mut deletes = HashMap::new();
        for name in settings.clevertap.accounts.keys() {
            for (prefix, mode, into) in [
                (UPLOAD_PREFIX, Mode::Passthrough, &mut uploads),
                (DELETE_PREFIX, Mode::Delete, &mut deletes),
            ] {
                let compiled = RouteMapping::compile(
                    name,
                    mode,
                    None,
                    &BTreeMap::new(),
                    None,
                    &settings.mapping,
                );
                match compiled {
                    Ok(mapping) => {
                        let route = Route {
                            name: format!("{prefix}{name}"),
                            account: name.clone(),
                            tokens: Vec::new(),
                            mapping: Arc::new(mapping),
                        };
                        into.insert(name.clone(), route);
                    }
                    // The same mapping settings for both: report them once.
                    Err(errors) if prefix == UPLOAD_PREFIX => problems.extend(
                        errors
                            .iter()
                            .filter(|e| !e.is_global(false))
                            .map(|e| format!("mapping: {e}")),
                    ),
                    Err(_) => {}
                }
            }
        }
        if problems.is_empty() {
            Ok(Self {
                webhooks,
                uploads,
                deletes,
            })
        } else {
            Err(problems)
        }
    }

    /// A webhook route by the name in its URL (`POST /webhooks/{name}`).
    pub fn webhook(&self, name: &str) -> Option<&Route> {
        self.webhooks.get(name)
    }

    /// The drop-in route of an account.
    pub fn upload(&self, account: &str) -> Option<&Route> {
        self.uploads.get(account)
    }

    /// The erasure-deletion route of an account.
    pub fn deletion(&self, account: &str) -> Option<&Route> {
        self.deletes.get(account)
    }

    /// Any route by the name stored with its rows: a webhook route, `_upload:<account>` or
    /// `_delete:<account>`.
    pub fn resolve(&self, name: &str) -> Option<&Route> {
        if let Some(account) = name.strip_prefix(UPLOAD_PREFIX) {
            self.uploads.get(account)
        } else if let Some(account) = name.strip_prefix(DELETE_PREFIX) {
            self.deletes.get(account)
        } else {
            self.webhooks.get(name)
        }
    }

    /// Webhook route names, sorted (the startup line, the console).
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.webhooks.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }
}

fn compile_route(
    settings: &Settings,
    name: &str,
    route: &crate::config::RouteSettings,
) -> Result<Route, Vec<String>> {
    let template = match &route.template {
        Some(path) if route.mode != Mode::Passthrough => match crate::templates::source(path) {
            Ok(text) => Some((path.clone(), text)),
            Err(error) => return Err(vec![format!("routes.{name}.template: {error}")]),
        },
        _ => None,
    };
    let mapping = RouteMapping::compile(
        name,
        route.mode,
        template.as_ref().map(|(p, t)| (p.as_str(), t.as_str())),
        &route.alias_table(),
        route.date_format.as_deref(),
        &settings.mapping,
    )
    .map_err(|errors| {
        errors
            .iter()
            .filter(|e| !e.is_global(route.date_format.is_some()))
            .map(|e| format!("routes.{name}: {e}"))
            .collect::<Vec<_>>()
    })?;
    let tokens = route
        .token
        .as_ref()
        .or(settings.auth.token.as_ref())
        .map(|t| t.list().into_iter().map(Credential::new).collect())
        .unwrap_or_default();
    Ok(Route {
        name: name.to_owned(),
        account: route.account.clone(),
        tokens,
        mapping: Arc::new(mapping),
    })
}
