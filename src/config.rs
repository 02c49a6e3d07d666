//! Configuration: a raw serde view of the TOML file, validated into [`Config`].
//!
//! Every rejection is a [`ConfigError`] naming the key (and the file line where the
//! key has one) and saying how to fix it, because the people reading these messages are
//! Genesys admins editing a file, not Rust developers.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use secrecy::SecretString;
use serde::Deserialize;
use toml::Spanned;
use url::Url;

mod columns;

/// Environment variables of the Genesys Cloud ecosystem (SDKs, CX as Code).
pub const ENV_REGION: &str = "GENESYSCLOUD_REGION";
/// Requests per minute Genesys Cloud allows one OAuth token (client credentials).
pub const GENESYS_TOKEN_RPM: u32 = 300;
pub const ENV_API_REGION: &str = "GENESYSCLOUD_API_REGION";
pub const ENV_CLIENT_ID: &str = "GENESYSCLOUD_OAUTHCLIENT_ID";
pub const ENV_CLIENT_SECRET: &str = "GENESYSCLOUD_OAUTHCLIENT_SECRET";
/// Set by systemd for units with `LoadCredential=`.
pub const ENV_CREDENTIALS_DIRECTORY: &str = "CREDENTIALS_DIRECTORY";

/// Region names as the official SDKs and the Terraform provider spell them.
const REGIONS: &[(&str, &str)] = &[
    ("us-east-1", "mypurecloud.com"),
    ("us-east-2", "use2.us-gov-pure.cloud"),
    ("us-west-2", "usw2.pure.cloud"),
    ("ca-central-1", "cac1.pure.cloud"),
    ("sa-east-1", "sae1.pure.cloud"),
    ("eu-central-1", "mypurecloud.de"),
    ("eu-central-2", "euc2.pure.cloud"),
    ("eu-west-1", "mypurecloud.ie"),
    ("eu-west-2", "euw2.pure.cloud"),
    ("me-central-1", "mec1.pure.cloud"),
    ("ap-south-1", "aps1.pure.cloud"),
    ("ap-northeast-1", "mypurecloud.jp"),
    ("ap-northeast-2", "apne2.pure.cloud"),
    ("ap-northeast-3", "apne3.pure.cloud"),
    ("ap-southeast-2", "mypurecloud.com.au"),
];

/// A configuration problem, phrased for the person editing the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub key: String,
    pub line: Option<usize>,
    pub problem: String,
    pub fix: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A value that came from the environment is named by its variable, not a file key.
        if self.key.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
            write!(f, "environment variable `{}`", self.key)?;
        } else {
            write!(f, "config key `{}`", self.key)?;
        }
        if let Some(line) = self.line {
            write!(f, " (line {line})")?;
        }
        write!(f, ": {}. Fix: {}", self.problem, self.fix)
    }
}

impl ConfigError {
    fn new(key: &str, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            key: key.to_owned(),
            line: None,
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    fn at(mut self, line: Option<usize>) -> Self {
        self.line = line;
        self
    }
}

// ---------------------------------------------------------------- raw file shape

/// The sections of [`RawConfig`], for the "known sections" hint (a unit test keeps the
/// list equal to the fields serde accepts).
pub const SECTIONS: &[&str] = &[
    "genesys", "table", "queues", "rows", "schedule", "limits", "http", "columns", "log",
];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    genesys: RawGenesys,
    table: Option<RawTable>,
    #[serde(default)]
    queues: RawQueues,
    #[serde(default)]
    schedule: RawSchedule,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    http: RawHttp,
    #[serde(default)]
    rows: RawRows,
    columns: Option<columns::RawColumns>,
    #[serde(default)]
    log: RawLog,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    level: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRows {
    refresh_after: Option<Spanned<String>>,
    heartbeat_key: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGenesys {
    region: Option<Spanned<String>>,
    api_url: Option<Spanned<String>>,
    login_url: Option<Spanned<String>>,
    client_id: Option<Spanned<String>>,
    client_secret_file: Option<Spanned<PathBuf>>,
    /// Present only so it can be refused with a helpful message; never read.
    client_secret: Option<Spanned<toml::Value>>,
    request_timeout: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    name: Option<Spanned<String>>,
    id: Option<Spanned<String>>,
    key: Option<Spanned<String>>,
    write_mode: Option<Spanned<String>>,
    owned: Option<Spanned<bool>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQueues {
    #[serde(default)]
    names: Vec<Spanned<String>>,
    #[serde(default)]
    ids: Vec<Spanned<String>>,
    #[serde(default, rename = "match")]
    patterns: Vec<Spanned<String>>,
    #[serde(default)]
    divisions: Vec<Spanned<String>>,
    resolve_every: Option<Spanned<String>>,
    on_vanish: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    cron: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    requests_per_minute: Option<Spanned<i64>>,
    write_concurrency: Option<Spanned<i64>>,
    queues_per_query: Option<Spanned<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    listen: Option<Spanned<String>>,
    queue_metrics: Option<bool>,
}

// ---------------------------------------------------------------- validated config

/// Which data table to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableRef {
    Name(String),
    Id(String),
}

impl fmt::Display for TableRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(n) => write!(f, "\"{n}\""),
            Self::Id(id) => write!(f, "id {id}"),
        }
    }
}

/// What a row's key holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyBy {
    Name,
    Id,
}

/// The cron schedule, parsed once so the period is known for stall detection.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub cron: String,
    /// The longest gap between two consecutive ticks over the next few days.
    pub period: Duration,
}

impl Schedule {
    pub fn parse(expr: &str) -> Result<Self, String> {
        use chrono::Timelike;
        let cron = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Required)
            .dom_and_dow(true)
            .build()
            .parse(expr)
            .map_err(|e| e.to_string().trim_end_matches('.').to_owned())?;
        // Step with find_next_occurrence from whole seconds: croner's iterator skips
        // every other tick of a per-second pattern.
        let mut t = Utc::now().with_nanosecond(0).unwrap_or_else(Utc::now);
        let mut prev = None;
        let mut longest = chrono::Duration::zero();
        let mut seen = 0;
        for _ in 0..2000 {
            let Ok(next) = cron.find_next_occurrence(&t, true) else {
                break;
            };
            if let Some(p) = prev {
                longest = longest.max(next - p);
            }
            prev = Some(next);
            seen += 1;
            t = next + chrono::Duration::seconds(1);
        }
        if seen == 0 {
            return Err("the expression never fires".into());
        }
        if seen < 2 {
            return Err("the expression fires at most once".into());
        }
        let period = longest
            .to_std()
            .map_err(|_| "the expression's ticks are not increasing".to_string())?;
        Ok(Self {
            cron: expr.to_owned(),
            period,
        })
    }
}

/// The validated configuration the daemon runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub api_url: Url,
    pub login_url: Url,
    pub client_id: String,
    pub client_secret: SecretString,
    pub request_timeout: Duration,
    pub table: TableRef,
    pub key_by: KeyBy,
    /// How rows reach the table.
    pub write_mode: WriteMode,
    /// `table.owned` as written. No mode needs it any more (imports use Append, which
    /// leaves every row not in the file alone); old files that set it keep loading.
    pub table_owned: bool,
    pub queue_names: Vec<String>,
    pub queue_ids: Vec<String>,
    pub selection: Selection,
    pub resolve_every: Duration,
    pub schedule: Schedule,
    pub requests_per_minute: u32,
    pub write_concurrency: usize,
    /// Queue ids per observation query at start (1-100). Genesys does not document its
    /// maximum: 100 is the cautious value clients use, and a 400 to a bigger query
    /// halves it for the rest of the process.
    pub queues_per_query: usize,
    pub http_listen: Option<SocketAddr>,
    pub rows: RowsPolicy,
    /// The columns written to each row, in order (the default five without `[columns]`).
    pub columns: crate::sync::columns::Columns,
    /// Per-queue gauges on /metrics (`http.queue_metrics`, default on).
    pub queue_metrics: bool,
    /// `[log] level`: the log filter when neither `--log-level` nor `RUST_LOG` sets one.
    pub log_level: Option<String>,
    /// Valid but questionable settings, logged as warnings by `load` (so `check` shows them).
    pub warnings: Vec<String>,
}

/// How a cycle's rows are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// POST/PUT per row: the table may hold rows of others.
    Rows,
    /// One CSV import job (Append) per cycle: works in a shared table.
    Import,
    /// Rows while they fit the budget, import when they do not.
    Auto,
}

/// What happens to the row of a queue that leaves the selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnVanish {
    Keep,
    Delete,
}

/// Queue selection beyond explicit names and ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Name patterns with `*` wildcards, case-insensitive.
    pub patterns: Vec<String>,
    /// Division ids or names: restrict pattern matches, or select whole divisions when no
    /// pattern is given.
    pub divisions: Vec<String>,
    pub on_vanish: OnVanish,
}

/// When rows are (re)written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowsPolicy {
    /// An unchanged row is rewritten once its UpdatedAt is this old.
    pub refresh_after: Duration,
    /// Key of the row written every cycle as a liveness signal; None when off.
    pub heartbeat_key: Option<String>,
}

impl Default for RowsPolicy {
    fn default() -> Self {
        Self {
            refresh_after: Duration::from_secs(300),
            heartbeat_key: Some("_heartbeat".to_owned()),
        }
    }
}

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
        columns: Option<columns::RawColumns>,
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

/// The dotted key a TOML error is about, read from the document at the error's position:
/// the key on that line under the nearest `[section]` above, or that section alone. The
/// first backticked word of toml's message is no key in general: for a syntax or type
/// error it is a delimiter or the offending value (`"`, `]`, `5`). "(file)" when the error
/// is outside any key and section.
fn key_from_toml_error(text: &str, offset: Option<usize>, message: &str) -> String {
    const MAX_KEY: usize = 80;
    let upto = offset.map_or(text.len(), |o| o.min(text.len()));
    let mut end = upto;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    // Lines up to and including the one the error is on.
    let line_end = text[end..].find('\n').map_or(text.len(), |i| end + i);
    let lines: Vec<&str> = text[..line_end].lines().collect();
    // Only text that is a TOML key counts: a garbled line names no key.
    let is_key = |k: &str| {
        !k.is_empty()
            && k.split('.').map(str::trim).all(|seg| {
                let quoted = |q: char| {
                    seg.len() >= 2
                        && seg.starts_with(q)
                        && seg.ends_with(q)
                        && !seg[1..seg.len() - 1].contains(|c: char| c == q || c.is_control())
                };
                quoted('"')
                    || quoted('\'')
                    || (!seg.is_empty()
                        && seg
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            })
    };
    let header = |l: &str| -> Option<String> {
        let l = l.trim_start().strip_prefix('[')?;
        let l = l.strip_prefix('[').unwrap_or(l);
        let name = l.split(']').next().unwrap_or(l).trim();
        Some(name.to_owned())
    };
    let key_of = |l: &str| -> Option<String> {
        let t = l.trim_start();
        if t.starts_with('#') || t.starts_with('[') {
            return None;
        }
        let (k, _) = t.split_once('=')?;
        let k = k.trim();
        is_key(k).then(|| k.to_owned())
    };
    // Only the error's own line names a key: one further up would be another key.
    let key = lines.last().and_then(|l| key_of(l));
    let section = lines
        .iter()
        .rev()
        .find_map(|l| header(l).filter(|h| is_key(h)));
    let found = match (section, key) {
        (Some(s), Some(k)) => Some(format!("{s}.{k}")),
        (Some(s), None) => Some(s),
        (None, Some(k)) => Some(k),
        // toml reports unknown fields as "unknown field `x`, expected ...".
        (None, None) => message
            .strip_prefix("unknown field `")
            .and_then(|m| m.split('`').next())
            .map(str::to_owned),
    };
    match found {
        Some(k) if !k.is_empty() => {
            let mut k = k;
            if k.len() > MAX_KEY {
                let mut cut = MAX_KEY;
                while !k.is_char_boundary(cut) {
                    cut -= 1;
                }
                k.truncate(cut);
                k.push('…');
            }
            k
        }
        _ => "(file)".to_owned(),
    }
}

struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self { starts }
    }

    fn line(&self, offset: usize) -> usize {
        match self.starts.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }
}

struct Validator<'a> {
    lines: &'a LineIndex,
    env: &'a dyn Env,
}

impl Validator<'_> {
    fn line<T>(&self, s: &Spanned<T>) -> Option<usize> {
        Some(self.lines.line(s.span().start))
    }

    fn validate(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        let g = raw.genesys;
        if let Some(inline) = &g.client_secret {
            return Err(ConfigError::new(
                "genesys.client_secret",
                "the client secret must not be written in the config file",
                "remove it and provide the secret through the GENESYSCLOUD_OAUTHCLIENT_SECRET environment variable, \
                 genesys.client_secret_file, or systemd LoadCredential=client-secret:...",
            )
            .at(self.line(inline)));
        }
        let (api_url, login_url) = self.urls(&g)?;
        let client_id = match self.env.var(ENV_CLIENT_ID) {
            Some(id) => id,
            None => match &g.client_id {
                Some(id) if !id.get_ref().trim().is_empty() => id.get_ref().trim().to_owned(),
                Some(id) => {
                    return Err(ConfigError::new(
                        "genesys.client_id",
                        "is empty",
                        "set it to the OAuth client id (Admin > Integrations > OAuth, Client Credentials grant)",
                    )
                    .at(self.line(id)));
                }
                None => {
                    return Err(ConfigError::new(
                        "genesys.client_id",
                        "is missing",
                        format!(
                            "set genesys.client_id or the {ENV_CLIENT_ID} environment variable to the OAuth client id"
                        ),
                    ));
                }
            },
        };
        let client_secret = self.secret(&g)?;
        let request_timeout = match &g.request_timeout {
            None => Duration::from_secs(10),
            Some(s) => self.duration("genesys.request_timeout", s, Duration::from_millis(100))?,
        };

        let (table, key_by, write_mode, table_owned) = self.table(raw.table)?;
        let rows = self.rows(&raw.rows)?;
        self.heartbeat_collision(&raw.rows, &raw.queues, key_by, &rows)?;
        let (queue_names, queue_ids, selection, resolve_every) = self.queues(raw.queues)?;
        let columns = self.columns(raw.columns)?;

        let schedule = match &raw.schedule.cron {
            None => Schedule::parse("0 * * * * *").map_err(|e| {
                ConfigError::new("schedule.cron", e, "report this bug: the default schedule is invalid")
            })?,
            Some(expr) => Schedule::parse(expr.get_ref().trim()).map_err(|e| {
                ConfigError::new(
                    "schedule.cron",
                    format!("`{}` is not a valid schedule: {e}", expr.get_ref()),
                    "use 6 fields with seconds, in UTC, e.g. \"0 * * * * *\" for every minute at :00",
                )
                .at(self.line(expr))
            })?,
        };
        if schedule.period < Duration::from_secs(10) {
            return Err(ConfigError::new(
                "schedule.cron",
                format!(
                    "fires every {}s, too often for the API budget",
                    schedule.period.as_secs()
                ),
                "run at most every 10 seconds; once a minute (\"0 * * * * *\") is the usual choice",
            )
            .at(raw.schedule.cron.as_ref().and_then(|c| self.line(c))));
        }

        let requests_per_minute = match &raw.limits.requests_per_minute {
            None => 240,
            Some(v) => self.int_in("limits.requests_per_minute", v, 10, 10_000)? as u32,
        };
        let mut warnings = Vec::new();
        if requests_per_minute > GENESYS_TOKEN_RPM {
            warnings.push(format!(
                "limits.requests_per_minute = {requests_per_minute} is above the about {GENESYS_TOKEN_RPM} \
                 requests per minute one OAuth token allows: expect 429 answers and waits; \
                 240 leaves headroom"
            ));
        }
        let write_concurrency = match &raw.limits.write_concurrency {
            None => 4,
            Some(v) => self.int_in("limits.write_concurrency", v, 1, 32)? as usize,
        };
        let queues_per_query = match &raw.limits.queues_per_query {
            None => crate::genesys::observations::MAX_QUEUES_PER_QUERY,
            Some(v) => self.int_in(
                "limits.queues_per_query",
                v,
                1,
                crate::genesys::observations::MAX_QUEUES_PER_QUERY as i64,
            )? as usize,
        };
        let http_listen = match &raw.http.listen {
            None => Some(SocketAddr::from(([127, 0, 0, 1], 9464))),
            Some(s) if s.get_ref().trim().is_empty() || s.get_ref() == "off" => None,
            Some(s) => Some(parse_listen(s.get_ref()).ok_or_else(|| {
                ConfigError::new(
                    "http.listen",
                    format!("`{}` is not an address", s.get_ref()),
                    "use IP:PORT such as \"127.0.0.1:9464\", \":9464\" for every interface (in a container), or \"off\"",
                )
                .at(self.line(s))
            })?),
        };

        let log_level = match &raw.log.level {
            None => None,
            Some(l) => Some(crate::telemetry::parse_log_level(l.get_ref()).map_err(|problem| {
                ConfigError::new(
                    "log.level",
                    problem,
                    "use error, warn, info, debug or trace, or a filter such as \"info,genesys_queue_sync=debug\"",
                )
                .at(self.line(l))
            })?),
        };

        Ok(Config {
            api_url,
            login_url,
            client_id,
            client_secret,
            request_timeout,
            table,
            key_by,
            write_mode,
            table_owned,
            queue_names,
            queue_ids,
            selection,
            resolve_every,
            schedule,
            requests_per_minute,
            write_concurrency,
            queues_per_query,
            http_listen,
            rows,
            columns,
            queue_metrics: raw.http.queue_metrics.unwrap_or(true),
            log_level,
            warnings,
        })
    }

    fn urls(&self, g: &RawGenesys) -> Result<(Url, Url), ConfigError> {
        let api_env = self.env.var(ENV_API_REGION);
        let api = if let Some(u) = api_env {
            parse_base_url(ENV_API_REGION, &u, None)?
        } else if let Some(u) = &g.api_url {
            parse_base_url("genesys.api_url", u.get_ref(), self.line(u))?
        } else {
            let (region, line, key) = match (self.env.var(ENV_REGION), &g.region) {
                (Some(r), _) => (r, None, ENV_REGION),
                (None, Some(r)) => (r.get_ref().clone(), self.line(r), "genesys.region"),
                (None, None) => {
                    return Err(ConfigError::new(
                        "genesys.region",
                        "is missing",
                        format!(
                            "set genesys.region (e.g. \"us-east-1\" or \"mypurecloud.ie\"), \
                             the {ENV_REGION} environment variable, or genesys.api_url"
                        ),
                    ));
                }
            };
            let domain = region_domain(&region).ok_or_else(|| {
                let known: Vec<&str> = REGIONS.iter().map(|(r, _)| *r).collect();
                ConfigError::new(
                    key,
                    format!("unknown region `{region}`"),
                    format!(
                        "use a region name ({}) or your org's domain such as \"mypurecloud.com\"",
                        known.join(", ")
                    ),
                )
                .at(line)
            })?;
            parse_base_url(key, &format!("https://api.{domain}"), line)?
        };
        let login = match &g.login_url {
            Some(u) => parse_base_url("genesys.login_url", u.get_ref(), self.line(u))?,
            None => derive_login_url(&api),
        };
        Ok((api, login))
    }

    fn secret(&self, g: &RawGenesys) -> Result<SecretString, ConfigError> {
        if let Some(s) = self.env.var(ENV_CLIENT_SECRET) {
            return Ok(SecretString::from(s.trim().to_owned()));
        }
        let (path, key, line) = if let Some(p) = &g.client_secret_file {
            (
                p.get_ref().clone(),
                "genesys.client_secret_file",
                self.line(p),
            )
        } else if let Some(dir) = self.env.var(ENV_CREDENTIALS_DIRECTORY) {
            (
                Path::new(&dir).join("client-secret"),
                ENV_CREDENTIALS_DIRECTORY,
                None,
            )
        } else {
            return Err(ConfigError::new(
                "genesys.client_secret_file",
                "no client secret was provided",
                format!(
                    "set the {ENV_CLIENT_SECRET} environment variable, point genesys.client_secret_file at a file \
                     holding the secret, or use systemd LoadCredential=client-secret:PATH"
                ),
            ));
        };
        let bytes = read_at_most(&path, MAX_SECRET_FILE).map_err(|e| {
            ConfigError::new(
                key,
                format!(
                    "cannot read the secret file {}: {}",
                    path.display(),
                    e.kind()
                ),
                "make the file exist and be readable by the daemon's user",
            )
            .at(line)
        })?;
        if bytes.len() as u64 > MAX_SECRET_FILE {
            return Err(ConfigError::new(
                key,
                format!(
                    "{} is larger than {} KiB, so it is not a client secret",
                    path.display(),
                    MAX_SECRET_FILE / 1024
                ),
                "point it at the file holding only the OAuth client secret",
            )
            .at(line));
        }
        let text = String::from_utf8(bytes).map_err(|_| {
            ConfigError::new(
                key,
                format!("the secret file {} is not UTF-8 text", path.display()),
                "write the OAuth client secret into it as plain text",
            )
            .at(line)
        })?;
        let secret = text.trim();
        if secret.is_empty() {
            return Err(ConfigError::new(
                key,
                format!("the secret file {} is empty", path.display()),
                "write the OAuth client secret into it",
            )
            .at(line));
        }
        Ok(SecretString::from(secret.to_owned()))
    }

    fn rows(&self, r: &RawRows) -> Result<RowsPolicy, ConfigError> {
        let mut p = RowsPolicy::default();
        if let Some(s) = &r.refresh_after {
            p.refresh_after = self.duration("rows.refresh_after", s, Duration::from_secs(60))?;
        }
        if let Some(k) = &r.heartbeat_key {
            let k = k.get_ref().trim();
            p.heartbeat_key = (!k.is_empty() && k != "off").then(|| k.to_owned());
        }
        Ok(p)
    }

    /// The heartbeat row must not be a queue's row: it would overwrite that queue's counts
    /// with a row of none. Row keys are compared case-insensitively (queue names are
    /// matched so, and whether the table's keys are case-sensitive is not documented).
    fn heartbeat_collision(
        &self,
        r: &RawRows,
        q: &RawQueues,
        key_by: KeyBy,
        rows: &RowsPolicy,
    ) -> Result<(), ConfigError> {
        let Some(hb) = &rows.heartbeat_key else {
            return Ok(());
        };
        let (list, what, list_key) = match key_by {
            KeyBy::Name => (&q.names, "name", "queues.names"),
            KeyBy::Id => (&q.ids, "id", "queues.ids"),
        };
        let Some(clash) = list
            .iter()
            .find(|n| n.get_ref().trim().eq_ignore_ascii_case(hb))
        else {
            return Ok(());
        };
        let fix = "set rows.heartbeat_key to a key no queue uses (e.g. \"_genesys_queue_sync_heartbeat\"), or \"off\"";
        let problem = format!(
            "the heartbeat row key `{hb}` is also the row key of a configured queue ({what} `{}`): \
             the heartbeat would overwrite that queue's row with a row of no counts",
            clash.get_ref().trim()
        );
        Err(match &r.heartbeat_key {
            Some(k) => ConfigError::new("rows.heartbeat_key", problem, fix).at(self.line(k)),
            // The default key: point at the queue, the line the user wrote.
            None => ConfigError::new(list_key, problem, fix).at(self.line(clash)),
        })
    }

    fn table(
        &self,
        raw: Option<RawTable>,
    ) -> Result<(TableRef, KeyBy, WriteMode, bool), ConfigError> {
        let Some(t) = raw else {
            return Err(ConfigError::new(
                "table",
                "the [table] section is missing",
                "add [table] with name = \"QueueAgentCounts\" (or id = \"...\") and key = \"name\" or \"id\"",
            ));
        };
        let table = match (&t.name, &t.id) {
            (Some(_), Some(id)) => {
                return Err(ConfigError::new(
                    "table.id",
                    "both table.name and table.id are set",
                    "keep only one of them",
                )
                .at(self.line(id)));
            }
            (Some(n), None) if !n.get_ref().trim().is_empty() => {
                TableRef::Name(n.get_ref().trim().to_owned())
            }
            (None, Some(id)) if !id.get_ref().trim().is_empty() => {
                TableRef::Id(id.get_ref().trim().to_owned())
            }
            (n, id) => {
                return Err(ConfigError::new(
                    "table.name",
                    "no table is named",
                    "set table.name to the data table's name (e.g. \"QueueAgentCounts\") or table.id to its id",
                )
                .at(n.as_ref().or(id.as_ref()).and_then(|s| self.line(s))));
            }
        };
        let key_by = match t.key.as_ref().map(|k| (k.get_ref().as_str(), k)) {
            None | Some(("name", _)) => KeyBy::Name,
            Some(("id", _)) => KeyBy::Id,
            Some((other, k)) => {
                return Err(ConfigError::new(
                    "table.key",
                    format!("`{other}` is not a row key kind"),
                    "use key = \"name\" (rows keyed by queue name) or key = \"id\" (by queue id)",
                )
                .at(self.line(k)));
            }
        };
        let owned = t.owned.as_ref().is_some_and(|o| *o.get_ref());
        let write_mode = match t.write_mode.as_ref().map(|m| (m.get_ref().as_str(), m)) {
            None | Some(("rows", _)) => WriteMode::Rows,
            Some(("import", _)) => WriteMode::Import,
            Some(("auto", _)) => WriteMode::Auto,
            Some((other, m)) => {
                return Err(ConfigError::new(
                    "table.write_mode",
                    format!("`{other}` is not a write mode"),
                    "use \"rows\" (one request per row), \"import\" (one CSV import per cycle) or \"auto\"",
                )
                .at(self.line(m)));
            }
        };
        Ok((table, key_by, write_mode, owned))
    }

    fn queues(
        &self,
        q: RawQueues,
    ) -> Result<(Vec<String>, Vec<String>, Selection, Duration), ConfigError> {
        let mut names = Vec::new();
        for n in &q.names {
            let name = n.get_ref().trim();
            if name.is_empty() {
                return Err(ConfigError::new(
                    "queues.names",
                    "contains an empty name",
                    "remove the empty entry",
                )
                .at(self.line(n)));
            }
            if !names.iter().any(|x: &String| x == name) {
                names.push(name.to_owned());
            }
        }
        let mut ids = Vec::new();
        for i in &q.ids {
            let id = i.get_ref().trim();
            if id.is_empty() || id.contains(['/', '?', '#', ' ']) {
                return Err(ConfigError::new(
                    "queues.ids",
                    format!("`{id}` is not a queue id"),
                    "use queue ids as shown in the queue's URL in Genesys Cloud admin (a UUID)",
                )
                .at(self.line(i)));
            }
            if !ids.iter().any(|x: &String| x == id) {
                ids.push(id.to_owned());
            }
        }
        let mut patterns = Vec::new();
        for p in &q.patterns {
            let pat = p.get_ref().trim();
            if pat.is_empty() || pat.chars().all(|c| c == '*') && !q.divisions.is_empty() {
                return Err(ConfigError::new(
                    "queues.match",
                    format!("`{pat}` selects nothing useful"),
                    "write a name pattern such as \"Sales *\" (use * as a wildcard), or use queues.divisions alone",
                )
                .at(self.line(p)));
            }
            patterns.push(pat.to_owned());
        }
        let mut divisions = Vec::new();
        for d in &q.divisions {
            let div = d.get_ref().trim();
            if div.is_empty() {
                return Err(ConfigError::new(
                    "queues.divisions",
                    "contains an empty entry",
                    "remove it",
                )
                .at(self.line(d)));
            }
            divisions.push(div.to_owned());
        }
        let on_vanish = match q.on_vanish.as_ref().map(|v| (v.get_ref().as_str(), v)) {
            None | Some(("keep", _)) => OnVanish::Keep,
            Some(("delete", _)) => OnVanish::Delete,
            Some((other, v)) => {
                return Err(ConfigError::new(
                    "queues.on_vanish",
                    format!("`{other}` is not an option"),
                    "use \"keep\" (leave the row of a vanished queue) or \"delete\" (remove it)",
                )
                .at(self.line(v)));
            }
        };
        if names.is_empty() && ids.is_empty() && patterns.is_empty() && divisions.is_empty() {
            return Err(ConfigError::new(
                "queues.names",
                "no queues are configured",
                "list queue names in queues.names = [\"Sales\"], queue ids in queues.ids, \
                 name patterns in queues.match, or divisions in queues.divisions",
            ));
        }
        if names.len() + ids.len() > 5000 {
            return Err(ConfigError::new(
                "queues.names",
                format!("{} queues are configured", names.len() + ids.len()),
                "a data table holds at most 5,000 rows: configure at most 5,000 queues",
            ));
        }
        let resolve_every = match &q.resolve_every {
            None => Duration::from_secs(600),
            Some(s) => self.duration("queues.resolve_every", s, Duration::from_secs(60))?,
        };
        let selection = Selection {
            patterns,
            divisions,
            on_vanish,
        };
        Ok((names, ids, selection, resolve_every))
    }

    fn duration(
        &self,
        key: &str,
        s: &Spanned<String>,
        min: Duration,
    ) -> Result<Duration, ConfigError> {
        let d = humantime::parse_duration(s.get_ref().trim()).map_err(|e| {
            ConfigError::new(
                key,
                format!("`{}` is not a duration: {e}", s.get_ref()),
                "write a duration such as \"10s\", \"5m\" or \"1h\"",
            )
            .at(self.line(s))
        })?;
        if d < min {
            return Err(ConfigError::new(
                key,
                format!("`{}` is too short", s.get_ref()),
                format!("use at least {}", humantime::format_duration(min)),
            )
            .at(self.line(s)));
        }
        Ok(d)
    }

    fn int_in(&self, key: &str, v: &Spanned<i64>, min: i64, max: i64) -> Result<i64, ConfigError> {
        let n = *v.get_ref();
        if (min..=max).contains(&n) {
            Ok(n)
        } else {
            Err(ConfigError::new(
                key,
                format!("{n} is out of range"),
                format!("use a whole number from {min} to {max}"),
            )
            .at(self.line(v)))
        }
    }
}

/// A client secret is a few dozen bytes; anything past this is the wrong file.
const MAX_SECRET_FILE: u64 = 64 * 1024;

/// Reads up to `max + 1` bytes, so a secret file pointed at a device (`/dev/zero`) or a big
/// file by mistake is refused instead of hanging the loader or filling memory.
fn read_at_most(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = Vec::new();
    std::fs::File::open(path)?
        .take(max + 1)
        .read_to_end(&mut buf)?;
    Ok(buf)
}

/// Parses `http.listen`: `IP:PORT`, `[IPv6]:PORT`, or `:PORT` for every IPv4 interface
/// (the Go and Prometheus convention, `0.0.0.0:PORT`).
pub fn parse_listen(s: &str) -> Option<SocketAddr> {
    let s = s.trim();
    if let Some(port) = s.strip_prefix(':') {
        return port
            .parse::<u16>()
            .ok()
            .map(|p| SocketAddr::from(([0, 0, 0, 0], p)));
    }
    s.parse().ok()
}

/// Maps a region name (`us-east-1`, `us_east_1`) or a domain to the domain. A domain may
/// be given as the API or login host (`api.mypurecloud.de`, `login.mypurecloud.de`) or
/// as a URL (`https://api.mypurecloud.de/`): the host prefix is dropped, so the API URL
/// does not become `api.api.`.
pub fn region_domain(region: &str) -> Option<String> {
    let r = region.trim().to_ascii_lowercase().replace('_', "-");
    let r = r
        .strip_prefix("https://")
        .unwrap_or(&r)
        .trim_end_matches('/')
        .to_owned();
    let r = ["api.", "login."]
        .iter()
        .find_map(|p| r.strip_prefix(p).filter(|rest| rest.contains('.')))
        .map_or(r.clone(), str::to_owned);
    if let Some((_, d)) = REGIONS.iter().find(|(name, _)| *name == r) {
        return Some((*d).to_owned());
    }
    let looks_like_domain = r.contains('.')
        && r.split('.').all(|label| {
            !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    looks_like_domain.then_some(r)
}

/// Builds the login base from the API base: `api.X` → `login.X`, else the same host.
pub fn derive_login_url(api: &Url) -> Url {
    let mut login = api.clone();
    if let Some(host) = api.host_str() {
        if let Some(rest) = host.strip_prefix("api.") {
            // set_host only fails for cannot-be-a-base URLs, which parse_base_url rejects.
            if login.set_host(Some(&format!("login.{rest}"))).is_err() {
                return api.clone();
            }
        }
    }
    login
}

/// Parses a base URL, enforcing https except for loopback hosts.
pub fn parse_base_url(key: &str, s: &str, line: Option<usize>) -> Result<Url, ConfigError> {
    let s = s.trim();
    let url = Url::parse(s).map_err(|e| {
        ConfigError::new(
            key,
            format!("`{s}` is not a URL: {e}"),
            "write a full URL such as \"https://api.mypurecloud.com\"",
        )
        .at(line)
    })?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(ConfigError::new(
                key,
                format!("`{s}` uses plain http to a non-loopback host"),
                "use https:// (plain http is accepted only for 127.0.0.0/8, ::1 and localhost)",
            )
            .at(line));
        }
        other => {
            return Err(ConfigError::new(
                key,
                format!("unsupported scheme `{other}`"),
                "use an https:// URL",
            )
            .at(line));
        }
    }
    if url.host_str().is_none() || url.cannot_be_a_base() {
        return Err(
            ConfigError::new(key, format!("`{s}` has no host"), "write a full URL").at(line),
        );
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(ConfigError::new(
            key,
            format!("`{s}` carries a query, fragment or user info"),
            "give only scheme, host and optional port",
        )
        .at(line));
    }
    Ok(url)
}

/// Checks an upload URL handed out by the API (https, or http to loopback only).
pub fn parse_upload_url(s: &str) -> Result<Url, String> {
    parse_base_url("uploadURI", s, None)
        .or_else(|e| {
            // Pre-signed URLs carry a query string; only the scheme and host rules apply here.
            let url = Url::parse(s).map_err(|_| e.clone())?;
            match url.scheme() {
                "https" => Ok(url),
                "http" if is_loopback(&url) => Ok(url),
                _ => Err(e),
            }
        })
        .map_err(|e| e.problem)
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const BASE: &str = r#"
[genesys]
region = "us-east-1"
client_id = "abc"

[table]
name = "QueueAgentCounts"

[queues]
names = ["Sales", "Support"]
"#;

    fn with_secret() -> BTreeMap<String, String> {
        env(&[(ENV_CLIENT_SECRET, "s3cret")])
    }

    #[test]
    fn minimal_config_gets_documented_defaults() {
        let c = parse(BASE, &with_secret()).unwrap();
        assert_eq!(c.api_url.as_str(), "https://api.mypurecloud.com/");
        assert_eq!(c.login_url.as_str(), "https://login.mypurecloud.com/");
        assert_eq!(c.client_secret.expose_secret(), "s3cret");
        assert_eq!(c.table, TableRef::Name("QueueAgentCounts".into()));
        assert_eq!(c.key_by, KeyBy::Name);
        assert_eq!(c.schedule.period, Duration::from_secs(60));
        assert_eq!(c.requests_per_minute, 240);
        assert_eq!(c.resolve_every, Duration::from_secs(600));
    }

    #[test]
    fn region_names_and_domains_map_like_the_sdks() {
        assert_eq!(
            region_domain("us_west_2").as_deref(),
            Some("usw2.pure.cloud")
        );
        assert_eq!(
            region_domain("EU-WEST-1").as_deref(),
            Some("mypurecloud.ie")
        );
        assert_eq!(
            region_domain("mypurecloud.de").as_deref(),
            Some("mypurecloud.de")
        );
        assert_eq!(region_domain("atlantis-1"), None);
    }

    #[test]
    fn env_overrides_file_values() {
        let e = env(&[
            (ENV_CLIENT_SECRET, "x"),
            (ENV_CLIENT_ID, "from-env"),
            (ENV_API_REGION, "http://127.0.0.1:9999"),
        ]);
        let c = parse(BASE, &e).unwrap();
        assert_eq!(c.client_id, "from-env");
        assert_eq!(c.api_url.as_str(), "http://127.0.0.1:9999/");
        assert_eq!(c.login_url.as_str(), "http://127.0.0.1:9999/");
        let c = parse(
            BASE,
            &env(&[(ENV_CLIENT_SECRET, "x"), (ENV_REGION, "eu_central_1")]),
        )
        .unwrap();
        assert_eq!(c.api_url.as_str(), "https://api.mypurecloud.de/");
    }

    #[test]
    fn plain_http_only_to_loopback() {
        for ok in [
            "http://127.0.0.5:1",
            "http://[::1]:8080",
            "http://localhost:3",
        ] {
            assert!(parse_base_url("k", ok, None).is_ok(), "{ok}");
        }
        let err =
            parse_base_url("genesys.api_url", "http://api.mypurecloud.com", Some(3)).unwrap_err();
        assert_eq!(err.key, "genesys.api_url");
        assert!(err.to_string().contains("line 3"), "{err}");
        assert!(err.fix.contains("https://"), "{err}");
        assert!(parse_base_url("k", "http://10.0.0.1", None).is_err());
    }

    #[test]
    fn inline_secret_is_refused_with_pointer_to_alternatives() {
        let text = BASE.replace(
            "client_id = \"abc\"",
            "client_id = \"abc\"\nclient_secret = \"hunter2\"",
        );
        let err = parse(&text, &with_secret()).unwrap_err();
        assert_eq!(err.key, "genesys.client_secret");
        assert_eq!(err.line, Some(5));
        assert!(err.fix.contains(ENV_CLIENT_SECRET));
        assert!(!err.to_string().contains("hunter2"));
    }

    #[test]
    fn secret_from_credentials_directory() {
        let dir = std::env::temp_dir().join(format!("gqs-cred-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("client-secret"), "from-systemd\n").unwrap();
        let e = env(&[(ENV_CREDENTIALS_DIRECTORY, dir.to_str().unwrap())]);
        let c = parse(BASE, &e).unwrap();
        assert_eq!(c.client_secret.expose_secret(), "from-systemd");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn secret_file_pointed_at_a_device_is_refused_not_read_forever() {
        let text = BASE.replace(
            "client_id = \"abc\"",
            "client_id = \"abc\"\nclient_secret_file = \"/dev/zero\"",
        );
        let err = parse(&text, &env(&[])).unwrap_err();
        assert_eq!(err.key, "genesys.client_secret_file");
        assert!(err.problem.contains("larger than 64 KiB"), "{err}");
    }

    #[test]
    fn missing_secret_names_all_three_sources() {
        let err = parse(BASE, &env(&[])).unwrap_err();
        assert!(
            err.fix.contains(ENV_CLIENT_SECRET) && err.fix.contains("LoadCredential"),
            "{err}"
        );
    }

    #[test]
    fn errors_name_key_and_line() {
        let cases: &[(&str, &str, &str, usize)] = &[
            (
                "region = \"us-east-1\"",
                "region = \"mars-1\"",
                "genesys.region",
                3,
            ),
            (
                "name = \"QueueAgentCounts\"",
                "name = \"Q\"\nkey = \"email\"",
                "table.key",
                8,
            ),
            (
                "names = [\"Sales\", \"Support\"]",
                "names = [\"Sales\"]\nresolve_every = \"soon\"",
                "queues.resolve_every",
                11,
            ),
            (
                "[queues]",
                "[schedule]\ncron = \"* * *\"\n[queues]",
                "schedule.cron",
                10,
            ),
            (
                "client_id = \"abc\"",
                "client_id = \"abc\"\nregion_typo = 1",
                "genesys.region_typo",
                5,
            ),
        ];
        for (from, to, key, line) in cases {
            let err = parse(&BASE.replace(from, to), &with_secret()).unwrap_err();
            assert_eq!(&err.key, key, "{err}");
            assert_eq!(err.line, Some(*line), "{err}");
            assert!(!err.fix.is_empty());
        }
    }

    #[test]
    fn toml_errors_name_the_key_they_are_about() {
        // Not the first backticked word of toml's message (`5`, `"`, `]`...).
        let cases: &[(&str, &str, usize)] = &[
            ("[table]\nname = 5\n", "table.name", 2),
            ("[queues]\nnames = \"x\"\n", "queues.names", 2),
            (
                "[genesys]\nregion = \"us-east-1\nclient_id = \"a\"\n",
                "genesys.region",
                2,
            ),
            ("[genesys\n", "genesys", 1),
            (
                "[limits]\nrequests_per_minute = 1.5\n",
                "limits.requests_per_minute",
                2,
            ),
            ("x = 1\nx = 2\n", "x", 2),
            ("= 1\n", "(file)", 1),
        ];
        for (text, key, line) in cases {
            let err = parse(text, &with_secret()).unwrap_err();
            assert_eq!(&err.key, key, "{text:?}: {err}");
            assert_eq!(err.line, Some(*line), "{text:?}: {err}");
        }
    }

    #[test]
    fn cron_period_is_the_longest_gap() {
        assert_eq!(
            Schedule::parse("0 * * * * *").unwrap().period,
            Duration::from_secs(60)
        );
        assert_eq!(
            Schedule::parse("*/15 * * * * *").unwrap().period,
            Duration::from_secs(15)
        );
        // croner's iterator skips every other tick of this one; the period must still be 1 s.
        assert_eq!(
            Schedule::parse("* * * * * *").unwrap().period,
            Duration::from_secs(1)
        );
        assert_eq!(
            Schedule::parse("0 0,10 * * * *").unwrap().period,
            Duration::from_secs(50 * 60)
        );
        assert!(
            Schedule::parse("0 * * * *").is_err(),
            "5 fields must be refused"
        );
    }

    #[test]
    fn too_frequent_schedule_is_refused() {
        let text = BASE.replace("[queues]", "[schedule]\ncron = \"* * * * * *\"\n[queues]");
        assert_eq!(
            parse(&text, &with_secret()).unwrap_err().key,
            "schedule.cron"
        );
    }

    #[test]
    fn secret_never_in_debug() {
        let c = parse(BASE, &with_secret()).unwrap();
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn a_heartbeat_key_that_is_a_queues_row_key_is_refused_with_key_line_and_fix() {
        // The default key against a queue of that name: points at the queue's line.
        let text = BASE.replace(
            r#"names = ["Sales", "Support"]"#,
            "names = [\n  \"Sales\",\n  \"_Heartbeat\",\n]",
        );
        let e = parse(&text, &with_secret()).unwrap_err();
        assert_eq!(e.key, "queues.names");
        assert_eq!(e.line, Some(12));
        assert!(e.problem.contains("`_heartbeat`"), "{e}");
        assert!(e.fix.contains("rows.heartbeat_key"), "{e}");
        // An explicit key naming a configured queue: points at heartbeat_key.
        let text = format!("{BASE}\n[rows]\nheartbeat_key = \"Support\"\n");
        let e = parse(&text, &with_secret()).unwrap_err();
        assert_eq!((e.key.as_str(), e.line), ("rows.heartbeat_key", Some(13)));
        // With rows keyed by id, a queue id is what collides, not a name.
        let by_id = BASE.replace(
            "name = \"QueueAgentCounts\"",
            "name = \"QueueAgentCounts\"\nkey = \"id\"",
        );
        let text = format!("{by_id}ids = [\"hb-1\"]\n\n[rows]\nheartbeat_key = \"HB-1\"\n");
        let e = parse(&text, &with_secret()).unwrap_err();
        assert_eq!(e.key, "rows.heartbeat_key");
        let text = format!("{by_id}\n[rows]\nheartbeat_key = \"Sales\"\n");
        assert!(
            parse(&text, &with_secret()).is_ok(),
            "a name is no row key when key = id"
        );
        // Off: nothing to collide with.
        let text = format!("{BASE}\n[rows]\nheartbeat_key = \"off\"\n");
        assert!(
            parse(
                &text.replace("\"Support\"", "\"_heartbeat\""),
                &with_secret()
            )
            .is_ok()
        );
    }

    #[test]
    fn listen_colon_port_means_every_interface() {
        let c = parse(
            &BASE.replace("[genesys]", "[http]\nlisten = \":9464\"\n\n[genesys]"),
            &with_secret(),
        )
        .unwrap();
        assert_eq!(c.http_listen, Some(SocketAddr::from(([0, 0, 0, 0], 9464))));
        assert_eq!(
            parse_listen("[::1]:9000"),
            Some("[::1]:9000".parse().unwrap())
        );
        assert_eq!(
            parse_listen("127.0.0.1:80"),
            Some("127.0.0.1:80".parse().unwrap())
        );
        for bad in [":", ":http", "9464", ":70000"] {
            assert_eq!(parse_listen(bad), None, "{bad}");
        }
    }

    #[test]
    fn region_given_as_api_or_login_host_is_not_doubled() {
        for given in [
            "api.mypurecloud.de",
            "login.mypurecloud.de",
            "https://api.mypurecloud.de/",
            "mypurecloud.de",
            "eu-central-1",
        ] {
            let text = BASE.replace("region = \"us-east-1\"", &format!("region = \"{given}\""));
            let c = parse(&text, &with_secret()).unwrap();
            assert_eq!(c.api_url.as_str(), "https://api.mypurecloud.de/", "{given}");
            assert_eq!(
                c.login_url.as_str(),
                "https://login.mypurecloud.de/",
                "{given}"
            );
        }
        // A domain that merely starts with "api" is left alone.
        assert_eq!(
            region_domain("apifoo.example").as_deref(),
            Some("apifoo.example")
        );
    }

    #[test]
    fn an_error_in_a_value_from_the_environment_names_the_variable() {
        let e = env(&[(ENV_CLIENT_SECRET, "x"), (ENV_REGION, "mars-1")]);
        let err = parse(BASE, &e).unwrap_err();
        assert_eq!(err.key, ENV_REGION);
        assert_eq!(err.line, None, "no file line for an env value");
        let text = err.to_string();
        assert!(
            text.starts_with("environment variable `GENESYSCLOUD_REGION`"),
            "{text}"
        );
        let e = env(&[(ENV_CLIENT_SECRET, "x"), (ENV_API_REGION, "ftp://x")]);
        let text = parse(BASE, &e).unwrap_err().to_string();
        assert!(
            text.starts_with("environment variable `GENESYSCLOUD_API_REGION`"),
            "{text}"
        );
        // The same mistake in the file names the key and its line.
        let text = parse(&BASE.replace("us-east-1", "mars-1"), &with_secret())
            .unwrap_err()
            .to_string();
        assert!(
            text.starts_with("config key `genesys.region` (line"),
            "{text}"
        );
    }

    #[test]
    fn the_known_sections_hint_lists_every_section_serde_accepts() {
        let err = parse("[nosuchsection]\nx = 1\n", &with_secret()).unwrap_err();
        // toml's own message lists the fields RawConfig accepts: `a`, `b`, ...
        let expected: Vec<&str> = err
            .problem
            .split("expected one of ")
            .nth(1)
            .unwrap_or_else(|| panic!("{}", err.problem))
            .split(", ")
            .map(|f| f.trim_matches(|c: char| c == '`' || c.is_whitespace()))
            .collect();
        let mut want = expected.clone();
        want.sort_unstable();
        let mut have = SECTIONS.to_vec();
        have.sort_unstable();
        assert_eq!(have, want, "update SECTIONS");
        for s in SECTIONS {
            assert!(err.fix.contains(&format!("[{s}]")), "{}", err.fix);
        }
    }

    #[test]
    fn log_level_and_queue_metrics_have_defaults_and_refuse_nonsense() {
        let c = parse(BASE, &with_secret()).unwrap();
        assert_eq!((c.log_level, c.queue_metrics), (None, true));
        let text = format!("{BASE}\n[log]\nlevel = \"debug\"\n\n[http]\nqueue_metrics = false\n");
        let c = parse(&text, &with_secret()).unwrap();
        assert_eq!(
            (c.log_level.as_deref(), c.queue_metrics),
            (Some("debug"), false)
        );
        let e = parse(
            &format!("{BASE}\n[log]\nlevel = \"verbose\"\n"),
            &with_secret(),
        )
        .unwrap_err();
        assert_eq!((e.key.as_str(), e.line), ("log.level", Some(13)));
        assert!(e.problem.contains("`verbose`"), "{e}");
        let e = parse(
            &format!("{BASE}\n[http]\nqueue_metrics = \"no\"\n"),
            &with_secret(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("queue_metrics"), "{e}");
    }

    #[test]
    fn requests_per_minute_above_what_a_token_allows_warns() {
        let text = format!("{BASE}\n[limits]\nrequests_per_minute = 400\n");
        let c = parse(&text, &with_secret()).unwrap();
        assert_eq!(c.requests_per_minute, 400);
        assert_eq!(c.warnings.len(), 1);
        assert!(c.warnings[0].contains("about 300"), "{:?}", c.warnings);
        let text = format!("{BASE}\n[limits]\nrequests_per_minute = 300\n");
        assert!(parse(&text, &with_secret()).unwrap().warnings.is_empty());
        assert!(parse(BASE, &with_secret()).unwrap().warnings.is_empty());
    }
}
