//! Reading and validating a config file (or only its `[columns]`).

use super::env::{Env, ProcessEnv};
use super::error::ConfigError;
use super::raw::{RawColumns, RawConfig};
use super::source::{LineIndex, key_from_toml_error};
use super::validate::{SECTIONS, Validator};
use super::validated::Config;
use serde::Deserialize;
use std::path::Path;

/// Reads and validates the file at `path`.
pub fn load(path: &Path, env: &dyn Env) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new(
            "--config",
            format!("cannot read {}: {e}", path.display()),
            "pass the path of an existing, readable TOML file (see systemd/config.example.toml)",
        )
    })?;
    let cfg = parse(&text, env)?;
    for w in &cfg.warnings {
        tracing::warn!("{}: {w}", path.display());
    }
    Ok(cfg)
}

/// Reads only the `[columns]` of the file at `path` (the default five without it): what
/// `table schema` needs, without credentials or the rest of the config.
pub fn load_columns(path: &Path) -> Result<crate::sync::columns::Columns, ConfigError> {
    #[derive(Deserialize)]
    struct OnlyColumns {
        columns: Option<RawColumns>,
    }
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new(
            "--config",
            format!("cannot read {}: {e}", path.display()),
            "pass the path of an existing, readable TOML file",
        )
    })?;
    let lines = LineIndex::new(&text);
    let raw: OnlyColumns = toml::from_str(&text).map_err(|e| {
        let line = e.span().map(|s| lines.line(s.start));
        let key = key_from_toml_error(&text, e.span().map(|s| s.start), e.message());
        ConfigError::new(&key, e.message().trim().to_owned(), "correct the TOML").at(line)
    })?;
    Validator {
        lines: &lines,
        env: &ProcessEnv,
    }
    .columns(raw.columns)
}

/// Validates a configuration document.
pub fn parse(text: &str, env: &dyn Env) -> Result<Config, ConfigError> {
    let lines = LineIndex::new(text);
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| lines.line(s.start));
        let message = e.message().trim().to_owned();
        let key = key_from_toml_error(text, e.span().map(|s| s.start), &message);
        ConfigError::new(
            &key,
            message,
            format!(
                "correct the TOML; known sections are {}",
                SECTIONS
                    .iter()
                    .map(|s| format!("[{s}]"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .at(line)
    })?;
    Validator { lines: &lines, env }.validate(raw)
}
