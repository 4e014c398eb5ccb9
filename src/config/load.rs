//! Loading settings: built-in defaults → `./config/default.toml` → `--config` file → environment,
//! then `*_file` secrets read from disk.

use std::path::{Path, PathBuf};

use config::{Config, Environment, File, FileFormat, Source};
use secrecy::SecretString;

use super::{Settings, Tokens, strict};

/// The shipped `config/default.toml`, compiled in so the binary runs from any directory.
pub const BUILT_IN: &str = include_str!("../../config/default.toml");

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration could not be read: {0}")]
    Load(#[from] config::ConfigError),
    #[error("cannot read {key} from {path}: {source}")]
    SecretFile {
        key: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
    Problems(Vec<String>),
}

impl Settings {
    /// Loads every layer: built-in defaults, `./config/default.toml`, `path` (or
    /// `FRESHTAP_CONFIG`), then `FRESHTAP__SECTION__KEY` variables; resolves `*_file` secrets.
    /// Unknown keys and values outside their list are refused, every one named.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        match Self::load_all(path) {
            (Some(settings), problems) if problems.is_empty() => Ok(settings),
            (_, problems) => Err(ConfigError::Problems(problems)),
        }
    }

    /// Every layer like [`Settings::load`], and every problem found reading them: the settings
    /// when they could be built at all (`check-config` then reports their checks too).
    pub fn load_all(path: Option<&Path>) -> (Option<Self>, Vec<String>) {
        let mut layers = vec![Layer::text("built-in defaults", BUILT_IN)];
        let local = Path::new("config/default.toml");
        if local.is_file() {
            layers.push(Layer::file(local.display().to_string(), local));
        }
        match (path, std::env::var_os("FRESHTAP_CONFIG")) {
            (Some(file), _) => layers.push(Layer::file(file.display().to_string(), file)),
            (None, Some(file)) => {
                let file = PathBuf::from(file);
                let name = format!("{} (FRESHTAP_CONFIG)", file.display());
                layers.push(Layer::file(name, &file));
            }
            (None, None) => {}
        }
        let vars = std::env::vars_os().filter_map(|(name, value)| {
            Some((name.into_string().ok()?, value.into_string().ok()?))
        });
        build(layers, strict::check_env(vars), true)
    }

    /// Built-in defaults with `overlay` (TOML) on top; no files, no environment. For tests
    /// and the demo. Strict like [`Settings::load`].
    pub fn from_toml(overlay: &str) -> Result<Self, ConfigError> {
        Self::from_file_and_toml(None, overlay)
    }

    /// Built-in defaults, then `file` when given, then `overlay`; no environment (the demo
    /// serving a configuration file's routes). Strict like [`Settings::load`].
    pub fn from_file_and_toml(file: Option<&Path>, overlay: &str) -> Result<Self, ConfigError> {
        let mut layers = vec![Layer::text("built-in defaults", BUILT_IN)];
        if let Some(file) = file {
            layers.push(Layer::file(file.display().to_string(), file));
        }
        layers.push(Layer::text("overlay", overlay));
        match build(layers, Vec::new(), false) {
            (Some(settings), problems) if problems.is_empty() => Ok(settings),
            (_, problems) => Err(ConfigError::Problems(problems)),
        }
    }

    fn resolve_secrets(mut self) -> Result<Self, ConfigError> {
        if let Some(path) = &self.queue.url_file {
            self.queue.url = read_secret("queue.url_file", path)?;
        }
        if let Some(path) = &self.auth.token_file {
            self.auth.token = Some(Tokens::One(read_secret("auth.token_file", path)?));
        }
        if let Some(path) = &self.auth.admin_token_file {
            self.auth.admin_token = Some(read_secret("auth.admin_token_file", path)?);
        }
        for (name, account) in &mut self.clevertap.accounts {
            if let Some(path) = &account.passcode_file {
                let key = format!("clevertap.accounts.{name}.passcode_file");
                account.passcode = Some(read_secret(&key, path)?);
            }
        }
        for (name, route) in &mut self.routes {
            if let Some(path) = &route.token_file {
                let key = format!("routes.{name}.token_file");
                route.token = Some(Tokens::One(read_secret(&key, path)?));
            }
        }
        Ok(self)
    }
}

fn read_secret(key: &str, path: &Path) -> Result<SecretString, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::SecretFile {
        key: key.to_owned(),
        path: path.to_owned(),
        source,
    })?;
    Ok(SecretString::from(
        text.trim_end_matches(['\n', '\r']).to_owned(),
    ))
}

/// One file layer, named for messages.
struct Layer {
    name: String,
    source: Box<dyn Source + Send + Sync>,
}

impl Layer {
    fn text(name: &str, text: &str) -> Self {
        Self {
            name: name.to_owned(),
            source: Box::new(File::from_str(text, FileFormat::Toml)),
        }
    }

    fn file(name: String, path: &Path) -> Self {
        Self {
            name,
            source: Box::new(File::from(path).format(FileFormat::Toml)),
        }
    }
}

/// Checks each layer's keys, then merges the layers (and the environment when `env`) and
/// deserializes; `problems` are those found before (the environment's).
fn build(
    layers: Vec<Layer>,
    mut problems: Vec<String>,
    env: bool,
) -> (Option<Settings>, Vec<String>) {
    let mut builder = Config::builder();
    let mut found = Vec::new();
    for layer in layers {
        match layer.source.collect() {
            Ok(map) => found.extend(strict::check_file(&layer.name, &map)),
            Err(error) => {
                found.push(format!("{}: {error}", layer.name));
                continue;
            }
        };
        builder = builder.add_source(vec![layer.source]);
    }
    found.append(&mut problems);
    let mut problems = found;
    if env {
        builder = builder.add_source(
            Environment::with_prefix("FRESHTAP")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(false),
        );
    }
    let strict_found = !problems.is_empty();
    let settings = builder
        .build()
        .and_then(|c| c.try_deserialize::<Settings>());
    let settings = match settings {
        Ok(settings) => settings,
        Err(error) => {
            // A value outside its list is already named (with the valid ones) by the strict check.
            let message = name_the_variable(&error.to_string());
            if !(strict_found && message.contains("does not have variant constructor")) {
                problems.push(message);
            }
            return (None, problems);
        }
    };
    match settings.resolve_secrets() {
        Ok(settings) => (Some(settings), problems),
        Err(error) => {
            problems.push(error.to_string());
            (None, problems)
        }
    }
}

/// "… for key `server.bind` in the environment" → "… for key `server.bind` (FRESHTAP__SERVER__BIND)".
fn name_the_variable(message: &str) -> String {
    let tail = "` in the environment";
    match (message.find("for key `"), message.rfind(tail)) {
        (Some(start), Some(end)) if start + 9 <= end => {
            let key = &message[start + 9..end];
            format!(
                "{}for key `{key}` ({}){}",
                &message[..start],
                strict::env_var(key),
                &message[end + tail.len()..]
            )
        }
        _ => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::name_the_variable;

    #[test]
    fn a_bad_environment_value_names_its_variable() {
        assert_eq!(
            name_the_variable(
                "invalid type: string \"nope\", expected a boolean for key \
                 `mapping.detect_test_webhooks` in the environment"
            ),
            "invalid type: string \"nope\", expected a boolean for key \
             `mapping.detect_test_webhooks` (FRESHTAP__MAPPING__DETECT_TEST_WEBHOOKS)"
        );
        assert_eq!(name_the_variable("other"), "other");
    }
}
