//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::telemetry::LogFormat;

/// Keeps a Genesys Cloud data table of per-queue agent counts fresh, so Architect flows
/// read a table (not rate limited) instead of calling the API on every interaction.
///
/// Start with `genesys-queue-sync demo` (no credentials needed), then write a config
/// (see systemd/config.example.toml), run `check`, then `run`.
#[derive(Debug, Parser)]
#[command(name = "genesys-queue-sync", version, about, long_about)]
pub struct Cli {
    /// Log format: text for people, json for log collectors; auto picks text on a
    /// terminal or under journald, json otherwise.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "auto",
        env = "GENESYS_QUEUE_SYNC_LOG_FORMAT"
    )]
    pub log_format: LogFormat,

    /// Log level or filter (error, warn, info, debug, trace, or a RUST_LOG-style filter).
    /// Defaults to RUST_LOG, else info.
    #[arg(long, global = true)]
    pub log_level: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone)]
pub struct ConfigArg {
    /// Path of the TOML configuration file.
    #[arg(
        long,
        short = 'c',
        env = "GENESYS_QUEUE_SYNC_CONFIG",
        default_value = "/etc/genesys-queue-sync/config.toml"
    )]
    pub config: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: sync every queue on the cron schedule until SIGTERM/SIGINT.
    Run(ConfigArg),
    /// Run one cycle now and print the values per queue.
    Once {
        #[command(flatten)]
        config: ConfigArg,
        /// Read and print, but write nothing to the table.
        #[arg(long)]
        dry_run: bool,
    },
    /// Check the config, the login, every queue, and the table's schema; one line per check.
    Check(ConfigArg),
    /// List the queues the selection resolves to and the requests per minute they cost.
    Queues(ConfigArg),
    /// Run the real daemon against a built-in simulated Genesys org and show the table live.
    Demo {
        /// Stop after this many cycles (default: until Ctrl-C).
        #[arg(long)]
        cycles: Option<u32>,
        /// Seconds between cycles.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=59))]
        every: u32,
    },
    /// Create or inspect the data table.
    #[command(subcommand)]
    Table(TableCommand),
}

#[derive(Debug, Subcommand)]
pub enum TableCommand {
    /// Print the table's JSON schema (draft-04) for the columns the daemon writes.
    Schema {
        /// Accepted for symmetry with `table create`; the columns do not depend on it.
        #[arg(long, short = 'c')]
        config: Option<std::path::PathBuf>,
    },
    /// Create the table if missing, or add missing columns (never removes or retypes).
    Create(ConfigArg),
}
