//! Loading settings: built-in defaults → `./config/default.toml` → `--config` file → environment,
//! then `*_file` secrets read from disk.

use std::path::{Path, PathBuf};

use config::{Config, Environment, File, FileFormat};
use secrecy::SecretString;

use super::{Settings, Tokens};

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
    #[error("{0}")]
    Invalid(String),
}

impl Settings {
    /// Loads every layer: built-in defaults, `./config/default.toml`, `path` (or
    /// `FRESHTAP_CONFIG`), then `FRESHTAP__SECTION__KEY` variables; resolves `*_file` secrets.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let env_path = std::env::var_os("FRESHTAP_CONFIG").map(PathBuf::from);
        let mut layers = Config::builder()
            .add_source(File::from_str(BUILT_IN, FileFormat::Toml))
            .add_source(File::new("config/default.toml", FileFormat::Toml).required(false));
        if let Some(file) = path.map(Path::to_path_buf).or(env_path) {
            layers = layers.add_source(File::from(file).format(FileFormat::Toml));
        }
        let settings: Self = layers
            .add_source(
                Environment::with_prefix("FRESHTAP")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true),
            )
            .build()?
            .try_deserialize()?;
        settings.resolve_secrets()
    }

    /// Built-in defaults with `overlay` (TOML) on top; no files, no environment. For tests
    /// and the demo.
    pub fn from_toml(overlay: &str) -> Result<Self, ConfigError> {
        let settings: Self = Config::builder()
            .add_source(File::from_str(BUILT_IN, FileFormat::Toml))
            .add_source(File::from_str(overlay, FileFormat::Toml))
            .build()?
            .try_deserialize()?;
        settings.resolve_secrets()
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
