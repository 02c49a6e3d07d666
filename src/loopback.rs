//! The configuration for an org served on this machine's loopback interface: the demo's
//! simulated org, the integration tests and the benchmark. No file, no environment: every
//! setting is given, so a test or the demo cannot pick up a real org's credentials.

use std::time::Duration;

use secrecy::SecretString;

use crate::config::{
    Config, KeyBy, OnVanish, RowsPolicy, Schedule, Selection, TableRef, WriteMode, parse_base_url,
};
use crate::sync::columns::Columns;

/// The client credentials and table a local org is reached with.
#[derive(Clone, Debug)]
pub struct LocalOrg<'a> {
    /// `http://127.0.0.1:PORT`: both the login host and the API host.
    pub base_url: &'a str,
    pub client_id: &'a str,
    pub client_secret: &'a str,
    /// Name of the data table the daemon writes.
    pub table: &'a str,
}

/// A rows-mode config for `org`, syncing `queue_names` on the 6-field `cron` schedule
/// (seconds first, so sub-minute periods are possible, which the file loader refuses).
pub fn config(org: &LocalOrg<'_>, queue_names: Vec<String>, cron: &str) -> anyhow::Result<Config> {
    let base = parse_base_url("base_url", org.base_url, None)?;
    Ok(Config {
        sources: Default::default(),
        api_url: base.clone(),
        login_url: base,
        client_id: org.client_id.to_owned(),
        client_secret: SecretString::from(org.client_secret.to_owned()),
        request_timeout: Duration::from_secs(5),
        table: TableRef::Name(org.table.to_owned()),
        key_by: KeyBy::Name,
        write_mode: WriteMode::Rows,
        table_owned: false,
        queue_names,
        queue_ids: Vec::new(),
        selection: Selection {
            patterns: Vec::new(),
            divisions: Vec::new(),
            on_vanish: OnVanish::Keep,
        },
        resolve_every: Duration::from_secs(600),
        schedule: Schedule::parse(cron).map_err(anyhow::Error::msg)?,
        mode: crate::config::Mode::Poll,
        push_min_interval: crate::config::DEFAULT_PUSH_MIN_INTERVAL,
        requests_per_minute: 240,
        write_concurrency: 4,
        queues_per_query: crate::genesys::observations::MAX_QUEUES_PER_QUERY,
        http_listen: None,
        rows: RowsPolicy::default(),
        columns: Columns::default(),
        queue_metrics: true,
        log_level: None,
        warnings: Vec::new(),
    })
}
