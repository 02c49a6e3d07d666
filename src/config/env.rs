//! The environment variables the config reads, and where it reads them from.

use std::collections::BTreeMap;

/// Environment variables of the Genesys Cloud ecosystem (SDKs, CX as Code).
pub const ENV_REGION: &str = "GENESYSCLOUD_REGION";

pub const ENV_API_REGION: &str = "GENESYSCLOUD_API_REGION";

pub const ENV_CLIENT_ID: &str = "GENESYSCLOUD_OAUTHCLIENT_ID";

pub const ENV_CLIENT_SECRET: &str = "GENESYSCLOUD_OAUTHCLIENT_SECRET";

/// Set by systemd for units with `LoadCredential=`.
pub const ENV_CREDENTIALS_DIRECTORY: &str = "CREDENTIALS_DIRECTORY";

/// Where the loader reads the environment from; tests pass a map.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.trim().is_empty())
    }
}

impl Env for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}
