//! The checks that need no network: numbers in range, accounts complete and referenced,
//! regions known. Template compilation is checked where routes are compiled (`routes.rs`).

use secrecy::ExposeSecret;

use super::{AccountSettings, Mode, REGIONS, Settings};

impl Settings {
    /// Every problem found, each naming its key; empty when the settings can be served.
    pub fn check(&self) -> Vec<String> {
        let mut problems = self.delivery_problems();
        problems.extend(self.server_problems());
        for (name, account) in &self.clevertap.accounts {
            problems.extend(account_problems(name, account));
        }
        for (name, route) in &self.routes {
            if !self.clevertap.accounts.contains_key(&route.account) {
                problems.push(format!(
                    "routes.{name}.account = \"{}\" names no [clevertap.accounts.{}] table",
                    route.account, route.account
                ));
            }
            if route.token.is_none() && self.auth.token.is_none() {
                problems.push(format!(
                    "routes.{name} has no token: set routes.{name}.token or auth.token \
                     (FRESHTAP__AUTH__TOKEN)"
                ));
            }
            if route.mode != Mode::Passthrough && route.template.is_none() {
                problems.push(format!(
                    "routes.{name}.template is required unless mode = \"passthrough\""
                ));
            }
        }
        problems
    }

    /// The queue URL's scheme, readable files, the log filter, listeners that do not collide.
    fn server_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let url = self.queue.url.expose_secret();
        if !["sqlite://", "postgres://", "postgresql://"]
            .iter()
            .any(|scheme| url.starts_with(scheme))
        {
            let scheme = url.split_once("://").map_or(url, |(s, _)| s);
            let hint = scheme.strip_suffix(':').unwrap_or(scheme);
            problems.push(format!(
                "queue.url (FRESHTAP__QUEUE__URL) must start with sqlite:// or postgres://, \
                 not {:?}",
                if url.contains("://") {
                    hint
                } else {
                    "(no scheme)"
                }
            ));
        }
        if let Some(path) = &self.queue.tls_ca_file
            && let Err(error) = std::fs::metadata(path)
        {
            problems.push(format!(
                "queue.tls_ca_file: cannot read {}: {error}",
                path.display()
            ));
        }
        if let Err(error) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            problems.push(format!(
                "log.level = \"{}\" (FRESHTAP__LOG__LEVEL) is not a tracing filter: {error} \
                 (e.g. \"info\", \"warn\", \"freshtap=debug,info\")",
                self.log.level
            ));
        }
        if self.server.max_wait_ms >= self.server.request_timeout_secs.saturating_mul(1000) {
            problems.push(format!(
                "server.max_wait_ms ({}) must be less than server.request_timeout_secs ({} s): a \
                 webhook waiting for a slot must still have time to be stored and answered",
                self.server.max_wait_ms, self.server.request_timeout_secs
            ));
        }
        if self.server.admin_bind == Some(self.server.bind) {
            problems.push(format!(
                "server.admin_bind is the same address as server.bind ({}): choose another \
                 port, or leave admin_bind unset to serve /admin on bind",
                self.server.bind
            ));
        }
        problems
    }

    fn delivery_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let d = &self.delivery;
        if d.request_timeout_secs + 5 > self.queue.lease_secs {
            problems.push(format!(
                "queue.lease_secs ({}) must exceed delivery.request_timeout_secs ({}) by at least 5 s",
                self.queue.lease_secs, d.request_timeout_secs
            ));
        }
        if d.batch_max_records == 0 || d.batch_max_records > 1000 {
            problems.push("delivery.batch_max_records must be 1 to 1000 (CleverTap's cap)".into());
        }
        if d.max_in_flight == 0 {
            problems.push("delivery.max_in_flight must be at least 1".into());
        }
        if d.max_attempts == 0 {
            problems.push("delivery.max_attempts must be at least 1".into());
        }
        if d.batch_max_bytes < 1024 || d.batch_max_bytes > 5 * 1024 * 1024 {
            problems.push("delivery.batch_max_bytes must be 1 KiB to 5 MiB".into());
        }
        problems
    }
}

fn account_problems(name: &str, account: &AccountSettings) -> Vec<String> {
    let mut problems = Vec::new();
    let env = name.to_uppercase();
    if account.account_id.as_deref().is_none_or(str::is_empty) {
        problems.push(format!(
            "clevertap.accounts.{name}.account_id is not set \
             (or FRESHTAP__CLEVERTAP__ACCOUNTS__{env}__ACCOUNT_ID)"
        ));
    }
    if account
        .passcode
        .as_ref()
        .is_none_or(|p| p.expose_secret().is_empty())
    {
        problems.push(format!(
            "clevertap.accounts.{name}.passcode is not set \
             (or passcode_file, or FRESHTAP__CLEVERTAP__ACCOUNTS__{env}__PASSCODE)"
        ));
    }
    if account.base_url.is_none() && !REGIONS.iter().any(|(r, _)| *r == account.region) {
        let known: Vec<&str> = REGIONS.iter().map(|(r, _)| *r).collect();
        problems.push(format!(
            "clevertap.accounts.{name}.region = \"{}\" is not one of {}",
            account.region,
            known.join(", ")
        ));
    }
    if let Some(url) = &account.base_url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        problems.push(format!(
            "clevertap.accounts.{name}.base_url must start with http:// or https://"
        ));
    }
    problems
}
