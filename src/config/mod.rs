//! Configuration: a raw serde view of the TOML file, validated into [`Config`].
//!
//! Every rejection is a [`ConfigError`] naming the key (and the file line where the
//! key has one) and saying how to fix it, because the people reading these messages are
//! Genesys admins editing a file, not Rust developers.
//!
//! Layout: `raw` (the file as serde reads it) -> `validate` (every check, with `genesys`
//! for `[genesys]` and `columns` for `[columns]`) -> `validated` (`Config`); `load` reads
//! a file; `error`, `env`, `source` (lines and keys of the file) and `urls` are the leaves
//! they share.

mod columns;
mod env;
mod error;
mod genesys;
mod load;
mod raw;
mod source;
#[cfg(test)]
pub(crate) mod tests;
mod urls;
mod validate;
mod validated;

pub use env::{
    ENV_API_REGION, ENV_CLIENT_ID, ENV_CLIENT_SECRET, ENV_CREDENTIALS_DIRECTORY, ENV_REGION, Env,
    ProcessEnv,
};
pub use error::ConfigError;
pub use load::{load, load_columns, parse};
pub use urls::{derive_login_url, parse_base_url, parse_upload_url, region_domain};
pub use validate::GENESYS_TOKEN_RPM;
pub use validated::{
    Config, DEFAULT_PUSH_MIN_INTERVAL, KeyBy, Mode, OnVanish, PUSH_MIN_INTERVAL_RANGE, RowsPolicy,
    Schedule, Selection, Source, Sources, TableRef, WriteMode,
};
