//! The raw file shape: what serde reads from the TOML, before any check.

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use std::fmt;
use std::path::PathBuf;
use toml::Spanned;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub(super) genesys: RawGenesys,
    pub(super) table: Option<RawTable>,
    #[serde(default)]
    pub(super) queues: RawQueues,
    #[serde(default)]
    pub(super) schedule: RawSchedule,
    #[serde(default)]
    pub(super) limits: RawLimits,
    #[serde(default)]
    pub(super) http: RawHttp,
    #[serde(default)]
    pub(super) rows: RawRows,
    pub(super) columns: Option<RawColumns>,
    #[serde(default)]
    pub(super) log: RawLog,
    #[serde(default)]
    pub(super) push: RawPush,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPush {
    pub(super) min_interval: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLog {
    pub(super) level: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRows {
    pub(super) refresh_after: Option<Spanned<String>>,
    pub(super) heartbeat_key: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGenesys {
    pub(super) region: Option<Spanned<String>>,
    pub(super) api_url: Option<Spanned<String>>,
    pub(super) login_url: Option<Spanned<String>>,
    pub(super) client_id: Option<Spanned<String>>,
    pub(super) client_secret_file: Option<Spanned<PathBuf>>,
    /// Present only so it can be refused with a helpful message; never read.
    pub(super) client_secret: Option<Spanned<toml::Value>>,
    pub(super) request_timeout: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTable {
    pub(super) name: Option<Spanned<String>>,
    pub(super) id: Option<Spanned<String>>,
    pub(super) key: Option<Spanned<String>>,
    pub(super) write_mode: Option<Spanned<String>>,
    pub(super) owned: Option<Spanned<bool>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawQueues {
    #[serde(default)]
    pub(super) names: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) ids: Vec<Spanned<String>>,
    #[serde(default, rename = "match")]
    pub(super) patterns: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) divisions: Vec<Spanned<String>>,
    pub(super) resolve_every: Option<Spanned<String>>,
    pub(super) on_vanish: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSchedule {
    pub(super) cron: Option<Spanned<String>>,
    pub(super) mode: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    pub(super) requests_per_minute: Option<Spanned<i64>>,
    pub(super) write_concurrency: Option<Spanned<i64>>,
    pub(super) queues_per_query: Option<Spanned<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttp {
    pub(super) listen: Option<Spanned<String>>,
    pub(super) queue_metrics: Option<bool>,
}

/// The `[columns]` table as written, in document order (a map would sort it).
#[derive(Debug, Default)]
pub(super) struct RawColumns {
    pub(super) entries: Vec<(Spanned<String>, Spanned<toml::Value>)>,
}

impl<'de> Deserialize<'de> for RawColumns {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawColumns;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a table of column name = metric")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawColumns, A::Error> {
                let mut entries = Vec::new();
                while let Some(k) = map.next_key::<Spanned<String>>()? {
                    let v = map.next_value::<Spanned<toml::Value>>()?;
                    entries.push((k, v));
                }
                Ok(RawColumns { entries })
            }
        }
        d.deserialize_map(V)
    }
}
