//! The validated configuration the daemon runs with.

use chrono::Utc;
use secrecy::SecretString;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;
use url::Url;

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
    /// Where the connection settings below came from, for `check`.
    pub sources: Sources,
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
    /// `[schedule] mode`: poll only, or push with the cron schedule as reconciliation.
    pub mode: Mode,
    /// `[push] min_interval`: at most one push write per row this often.
    pub push_min_interval: Duration,
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

/// How rows follow their queues (`[schedule] mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Every cron tick observes and writes (the default).
    #[default]
    Poll,
    /// Rows follow Notifications API events within seconds; the cron schedule keeps
    /// running as the reconciliation poll (and is what writes while push is down).
    Push,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Poll => "poll",
            Self::Push => "push",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[push] min_interval` when unset.
pub const DEFAULT_PUSH_MIN_INTERVAL: Duration = Duration::from_secs(5);
/// The range `[push] min_interval` accepts: below 1 s Genesys publishes no faster
/// (at most one event per queue a second); above 10 minutes push is slower than polling.
pub const PUSH_MIN_INTERVAL_RANGE: (Duration, Duration) =
    (Duration::from_secs(1), Duration::from_secs(600));

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

/// Where one effective setting came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Source {
    /// An environment variable.
    Env(&'static str),
    /// A key of the config file, at this line when known.
    File {
        key: &'static str,
        line: Option<usize>,
    },
    /// `$CREDENTIALS_DIRECTORY/client-secret` (systemd `LoadCredential=`).
    CredentialsDirectory,
    /// Derived from another setting (the login URL from the API URL).
    Derived(&'static str),
    /// Set by the program itself (the demo and tests).
    #[default]
    Program,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env(name) => write!(f, "from {name}"),
            Self::File {
                key,
                line: Some(line),
            } => write!(f, "from {key}, line {line} of the config file"),
            Self::File { key, line: None } => write!(f, "from {key} in the config file"),
            Self::CredentialsDirectory => {
                f.write_str("from $CREDENTIALS_DIRECTORY/client-secret (systemd LoadCredential)")
            }
            Self::Derived(from) => write!(f, "derived from {from}"),
            Self::Program => f.write_str("set by the program"),
        }
    }
}

/// Where the connection settings came from: an exported variable silently overriding
/// the file is the likeliest first-day mistake, so `check` prints these.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sources {
    pub api_url: Source,
    pub login_url: Source,
    pub client_id: Source,
    pub client_secret: Source,
}
