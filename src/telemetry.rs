//! Logging: human text on a terminal, JSON for machines; under journald, no timestamps
//! (the journal adds its own) and a syslog priority prefix on every line (`<3>` error,
//! `<4>` warn, `<6>` info, `<7>` debug and trace) so `journalctl -p err` finds the errors.
//!
//! The filter is reloadable: `run` applies a new `[log] level` from a SIGHUP-reloaded
//! config when neither `--log-level` nor `RUST_LOG` fixed the level.

use std::io::IsTerminal;
use std::sync::Arc;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, reload};

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Text on a terminal or under journald, JSON otherwise.
    Auto,
    Text,
    Json,
}

/// Whether text logs carry ANSI colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless NO_COLOR is set (CLICOLOR_FORCE forces it on a pipe).
    Auto,
    Always,
    Never,
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

/// What the logger was started with; decided before anything is installed.
#[derive(Debug, Clone)]
pub struct LogSettings {
    pub format: LogFormat,
    pub color: ColorChoice,
    /// `--log-level`, already validated by the CLI.
    pub level: Option<String>,
    /// The level when neither --log-level nor RUST_LOG is given.
    pub default_level: &'static str,
}

/// The environment the logger depends on, read once (tests pass their own).
#[derive(Debug, Clone, Default)]
pub struct LogEnv {
    pub rust_log: Option<String>,
    pub no_color: bool,
    pub clicolor_force: bool,
    /// stderr is the stream journald gave this process (JOURNAL_STREAM matches it).
    pub journald: bool,
    pub stderr_is_terminal: bool,
}

impl LogEnv {
    pub fn from_process() -> Self {
        let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
        Self {
            rust_log: std::env::var("RUST_LOG")
                .ok()
                .filter(|v| !v.trim().is_empty()),
            no_color: set("NO_COLOR"),
            clicolor_force: std::env::var_os("CLICOLOR_FORCE")
                .is_some_and(|v| v != "0" && !v.is_empty()),
            journald: stderr_is_journal(std::env::var("JOURNAL_STREAM").ok().as_deref()),
            stderr_is_terminal: std::io::stderr().is_terminal(),
        }
    }
}

/// systemd sets JOURNAL_STREAM to `device:inode` of the stream it connected; a child
/// whose stderr was redirected elsewhere inherits the variable, so the numbers must
/// match stderr's own (as systemd.exec(5) asks).
fn stderr_is_journal(journal_stream: Option<&str>) -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let Some((dev, ino)) = journal_stream.and_then(|v| v.trim().split_once(':')) else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    match std::fs::File::from(fd).metadata() {
        Ok(m) => m.dev() == dev && m.ino() == ino,
        Err(_) => false,
    }
}

/// The decisions, separate from installing them so they are unit-tested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPlan {
    pub json: bool,
    pub ansi: bool,
    pub timestamps: bool,
    pub priority_prefix: bool,
    pub filter: String,
    /// The level was fixed by --log-level or RUST_LOG: a config's `[log] level` is ignored.
    pub explicit: bool,
    /// Something to tell the operator once the logger is up.
    pub warning: Option<String>,
}

pub fn plan(s: &LogSettings, env: &LogEnv) -> LogPlan {
    let json = match s.format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !(env.stderr_is_terminal || env.journald),
    };
    let ansi = !json
        && !env.journald
        && match s.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => !env.no_color && (env.clicolor_force || env.stderr_is_terminal),
        };
    let mut warning = None;
    let (filter, explicit) = match (&s.level, &env.rust_log) {
        (Some(l), _) => (l.clone(), true),
        (None, Some(r)) => match parse_log_level(r) {
            Ok(r) => (r, true),
            Err(e) => {
                warning = Some(format!(
                    "RUST_LOG ignored: {e}; logging at {} instead",
                    s.default_level
                ));
                (s.default_level.to_owned(), false)
            }
        },
        (None, None) => (s.default_level.to_owned(), false),
    };
    LogPlan {
        json,
        ansi,
        timestamps: !env.journald,
        priority_prefix: env.journald,
        filter,
        explicit,
        warning,
    }
}

/// Builds the filter: the directives, plus the caps on noisy libraries unless RUST_LOG
/// (which may name them on purpose) chose the filter.
fn build_filter(filter: &str, quiet: bool) -> Result<EnvFilter, anyhow::Error> {
    let mut f = EnvFilter::try_new(filter)?;
    if quiet {
        for d in QUIET {
            f = f.add_directive(d.parse()?);
        }
    }
    Ok(f)
}

/// Changes the log filter of the running process.
#[derive(Clone)]
pub struct LogControl {
    handle: Option<reload::Handle<EnvFilter, Registry>>,
    explicit: bool,
    /// The filter when the config names no level (the command's default).
    default: String,
    current: Arc<std::sync::Mutex<String>>,
}

impl LogControl {
    /// A control that changes nothing (tests and embedders that installed their own logger).
    pub fn detached() -> Self {
        Self {
            handle: None,
            explicit: true,
            default: String::new(),
            current: Arc::default(),
        }
    }

    /// Applies a config's `[log] level` unless --log-level or RUST_LOG fixed the level;
    /// None (a reloaded config without one) goes back to the default. Returns the filter
    /// now in force when it changed.
    pub fn apply_config_level(&self, level: Option<&str>) -> anyhow::Result<Option<String>> {
        let level = level.unwrap_or(&self.default);
        let Some(handle) = &self.handle else {
            return Ok(None);
        };
        if self.explicit {
            return Ok(None);
        }
        let mut current = self
            .current
            .lock()
            .map_err(|_| anyhow::anyhow!("log control poisoned"))?;
        if *current == level {
            return Ok(None);
        }
        handle.reload(build_filter(level, true)?)?;
        level.clone_into(&mut current);
        Ok(Some(level.to_owned()))
    }
}

/// Installs the global subscriber.
pub fn init(settings: &LogSettings) -> anyhow::Result<LogControl> {
    let env = LogEnv::from_process();
    let p = plan(settings, &env);
    let quiet = settings.level.is_some() || !p.explicit;
    let (filter, handle) = reload::Layer::new(build_filter(&p.filter, quiet)?);
    // Every line passes the secret scrubber, whatever the event carries.
    let fmt = fmt_layer(&p, || crate::redact::Scrubbing::new(std::io::stderr()));
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .try_init()
        .map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))?;
    if let Some(w) = &p.warning {
        tracing::warn!("{w}");
    }
    Ok(LogControl {
        handle: Some(handle),
        explicit: p.explicit,
        default: p.filter.clone(),
        current: Arc::new(std::sync::Mutex::new(p.filter)),
    })
}

/// The formatting layer for a plan, writing to `writer`.
pub fn fmt_layer<S, W>(p: &LogPlan, writer: W) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let base = tracing_subscriber::fmt::layer().with_writer(writer);
    if p.json {
        let f = tracing_subscriber::fmt::format()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false);
        let layer = base.json().event_format(Prefixed {
            inner: f,
            on: p.priority_prefix,
        });
        return layer.boxed();
    }
    let f = tracing_subscriber::fmt::format()
        .with_target(false)
        .with_ansi(p.ansi);
    if p.timestamps {
        base.with_ansi(p.ansi)
            .event_format(Prefixed {
                inner: f,
                on: p.priority_prefix,
            })
            .boxed()
    } else {
        base.with_ansi(p.ansi)
            .event_format(Prefixed {
                inner: f.without_time(),
                on: p.priority_prefix,
            })
            .boxed()
    }
}

/// The syslog priority journald reads from the start of a line (sd-daemon(3)).
pub fn priority_prefix(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "<3>",
        Level::WARN => "<4>",
        Level::INFO => "<6>",
        _ => "<7>",
    }
}

/// Writes the priority prefix, then the line as `inner` formats it.
struct Prefixed<F> {
    inner: F,
    on: bool,
}

impl<S, N, F> FormatEvent<S, N> for Prefixed<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        if self.on {
            writer.write_str(priority_prefix(event.metadata().level()))?;
        }
        self.inner.format_event(ctx, writer, event)
    }
}

/// The level names `--log-level` takes alone.
const LEVELS: &[&str] = &["off", "error", "warn", "info", "debug", "trace"];

/// Accepts a level or a filter whose every directive ends in a level
/// (`target=level`, `target[span]=level`). A bare word that is not a level, such as
/// `verbose`, is valid filter syntax (it enables everything of a target called
/// `verbose`, and so logs nothing at all); it is always a mistake, so it is refused.
pub fn parse_log_level(s: &str) -> Result<String, String> {
    let hint = || {
        format!(
            "`{s}` is neither a log level ({}) nor a filter such as `info,genesys_queue_sync=debug`",
            LEVELS.join(", ")
        )
    };
    let directives: Vec<&str> = s
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .collect();
    if directives.is_empty() {
        return Err(hint());
    }
    for d in &directives {
        let level = match d.rsplit_once('=') {
            Some((target, level)) if !target.trim().is_empty() => level,
            Some(_) => return Err(hint()),
            None => d,
        };
        if !LEVELS.iter().any(|l| l.eq_ignore_ascii_case(level.trim())) {
            return Err(hint());
        }
    }
    tracing_subscriber::EnvFilter::try_new(s).map_err(|e| format!("{}: {e}", hint()))?;
    Ok(s.to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn log_level_takes_levels_and_filters_and_refuses_the_rest() {
        for ok in [
            "info",
            "DEBUG",
            "off",
            "warn,genesys_queue_sync=debug",
            "genesys_queue_sync::sync=trace",
        ] {
            assert_eq!(parse_log_level(ok).as_deref(), Ok(ok), "{ok}");
        }
        for bad in ["verbose", "", "info,loud", "=debug", "x=loud", "info,[x"] {
            let e = parse_log_level(bad).unwrap_err();
            assert!(e.contains("neither a log level"), "{bad}: {e}");
        }
    }
    use std::sync::Mutex;

    fn settings(level: Option<&str>) -> LogSettings {
        LogSettings {
            format: LogFormat::Auto,
            color: ColorChoice::Auto,
            level: level.map(str::to_owned),
            default_level: "info",
        }
    }

    #[test]
    fn no_color_turns_colour_off_on_a_terminal_and_flags_win() {
        let tty = LogEnv {
            stderr_is_terminal: true,
            ..LogEnv::default()
        };
        assert!(plan(&settings(None), &tty).ansi);
        let no_color = LogEnv {
            no_color: true,
            ..tty.clone()
        };
        assert!(!plan(&settings(None), &no_color).ansi);
        let forced = LogEnv {
            clicolor_force: true,
            ..no_color.clone()
        };
        assert!(
            !plan(&settings(None), &forced).ansi,
            "NO_COLOR wins over CLICOLOR_FORCE"
        );
        let always = LogSettings {
            color: ColorChoice::Always,
            ..settings(None)
        };
        assert!(plan(&always, &no_color).ansi, "--color always is explicit");
        let never = LogSettings {
            color: ColorChoice::Never,
            ..settings(None)
        };
        assert!(!plan(&never, &tty).ansi);
    }

    #[test]
    fn journald_gets_text_with_priorities_and_no_time_or_colour() {
        let j = LogEnv {
            journald: true,
            stderr_is_terminal: false,
            ..LogEnv::default()
        };
        let p = plan(&settings(None), &j);
        assert!(!p.json && !p.ansi && !p.timestamps && p.priority_prefix);
        let pipe = plan(&settings(None), &LogEnv::default());
        assert!(pipe.json && !pipe.priority_prefix && pipe.timestamps);
    }

    #[test]
    fn level_precedence_is_flag_then_rust_log_then_default_and_bad_rust_log_warns() {
        let env = LogEnv {
            rust_log: Some("debug".into()),
            ..LogEnv::default()
        };
        let p = plan(&settings(Some("warn")), &env);
        assert_eq!((p.filter.as_str(), p.explicit), ("warn", true));
        let p = plan(&settings(None), &env);
        assert_eq!((p.filter.as_str(), p.explicit), ("debug", true));
        let p = plan(&settings(None), &LogEnv::default());
        assert_eq!((p.filter.as_str(), p.explicit), ("info", false));
        let bad = LogEnv {
            rust_log: Some("verbose".into()),
            ..LogEnv::default()
        };
        let p = plan(&settings(None), &bad);
        assert_eq!(p.filter, "info");
        assert!(p.warning.unwrap().contains("RUST_LOG ignored"));
    }

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn capture(p: &LogPlan) -> String {
        let buf = Buf::default();
        let b = buf.clone();
        let layer = fmt_layer(p, move || b.clone());
        let sub = tracing_subscriber::registry()
            .with(EnvFilter::new("trace"))
            .with(layer);
        tracing::subscriber::with_default(sub, || {
            tracing::error!("e1");
            tracing::warn!("w1");
            tracing::info!(queue = "Sales", "i1");
            tracing::debug!("d1");
            tracing::trace!("t1");
        });
        String::from_utf8(buf.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn every_journald_line_starts_with_its_syslog_priority() {
        let j = LogEnv {
            journald: true,
            ..LogEnv::default()
        };
        let text = capture(&plan(&settings(None), &j));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        for (line, (prefix, msg)) in lines.iter().zip([
            ("<3>", "e1"),
            ("<4>", "w1"),
            ("<6>", "i1"),
            ("<7>", "d1"),
            ("<7>", "t1"),
        ]) {
            assert!(line.starts_with(prefix) && line.contains(msg), "{line}");
        }
        // JSON to the journal keeps the prefix (journald strips it) before the object.
        let json = LogSettings {
            format: LogFormat::Json,
            ..settings(None)
        };
        let text = capture(&plan(&json, &j));
        let first = text.lines().next().unwrap();
        let v: serde_json::Value =
            serde_json::from_str(first.strip_prefix("<3>").unwrap()).unwrap();
        assert_eq!(v["message"], "e1");
        // Outside journald, no prefix.
        let text = capture(&plan(&settings(None), &LogEnv::default()));
        assert!(text.lines().all(|l| l.starts_with('{')), "{text}");
    }
}
