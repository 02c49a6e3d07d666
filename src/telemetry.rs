//! Logging: human text on a terminal, JSON for machines, no timestamps under journald
//! (the journal adds its own).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Text on a terminal or under journald, JSON otherwise.
    Auto,
    Text,
    Json,
}

/// Libraries whose debug/trace output is noise for operators (and, for HTTP internals,
/// could echo request details): capped at info unless RUST_LOG names them explicitly.
const QUIET: &[&str] = &[
    "hyper=info",
    "hyper_util=info",
    "reqwest=info",
    "rustls=info",
    "h2=info",
    "tower=info",
    "axum=info",
    // Logs "Uninited", "Job creator created" at info on every start.
    "tokio_cron_scheduler=warn",
];

/// Installs the global subscriber. `level` (from --log-level) wins over RUST_LOG.
pub fn init(format: LogFormat, level: Option<&str>) -> anyhow::Result<()> {
    let mut filter = match level {
        Some(l) => EnvFilter::try_new(l)?,
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    if level.is_some() || std::env::var_os("RUST_LOG").is_none() {
        for d in QUIET {
            filter = filter.add_directive(d.parse()?);
        }
    }
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !(std::io::stderr().is_terminal() || journald),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_span_events(FmtSpan::NONE);
    let result = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else if journald {
        builder
            .without_time()
            .with_ansi(false)
            .with_target(false)
            .try_init()
    } else {
        builder
            .with_ansi(std::io::stderr().is_terminal())
            .with_target(false)
            .try_init()
    };
    result.map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))
}
