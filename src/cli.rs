//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::telemetry::{ColorChoice, LogFormat, parse_log_level};

/// Keeps a Genesys Cloud data table of per-queue agent counts fresh, so Architect flows
/// read a table (not rate limited) instead of calling the API on every interaction.
///
/// Start with `genesys-queue-sync demo` (no credentials needed), then write a config
/// (see /etc/genesys-queue-sync/config.toml or systemd/config.example.toml), run
/// `check`, then `run`.
#[derive(Debug, Parser)]
#[command(name = "genesys-queue-sync", version = crate::version::LONG, about, long_about)]
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

    /// Log level (error, warn, info, debug, trace, off) or a filter such as
    /// `info,genesys_queue_sync=debug`. Defaults to RUST_LOG, else info for `run` and
    /// `demo` and warn for the one-shot commands.
    #[arg(long, global = true, value_parser = parse_log_level)]
    pub log_level: Option<String>,

    /// Colour in text logs: auto is on for a terminal unless NO_COLOR is set.
    #[arg(long, global = true, value_enum, default_value = "auto")]
    pub color: ColorChoice,

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
        /// Seconds between cycles (at 1 s the 240 requests a minute leave no room for
        /// writes, and the daemon warns; 5 s writes every change of the demo's queues).
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=59))]
        every: u32,
        /// Push mode: rows follow the simulated org within seconds over its Notifications
        /// API; the cycles are the reconciliation poll.
        #[arg(long)]
        push: bool,
    },
    /// Create or inspect the data table.
    #[command(subcommand)]
    Table(TableCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on stdout.
    Man,
}

impl Command {
    /// Commands that do one thing and exit: their results go to stdout, and their logs
    /// stay at warn unless --log-level (or RUST_LOG) asks for more, so the result is not
    /// buried under the progress of a daemon.
    pub fn is_one_shot(&self) -> bool {
        !matches!(self, Command::Run(_) | Command::Demo { .. })
    }
}

#[derive(Debug, Subcommand)]
pub enum TableCommand {
    /// Print the table's JSON schema (draft-04) for the columns the daemon writes.
    Schema {
        /// The config whose `[columns]` the schema holds (the default five without it).
        #[arg(long, short = 'c')]
        config: Option<std::path::PathBuf>,
    },
    /// Create the table if missing, or add missing columns (never removes or retypes).
    Create(ConfigArg),
}

/// Writes the completion script for `shell`.
pub fn write_completions(shell: clap_complete::Shell, out: &mut dyn std::io::Write) {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "genesys-queue-sync", out);
}

/// Writes the man page, with one section per subcommand.
pub fn write_man(out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let cmd = Cli::command();
    clap_mangen::Man::new(cmd).render(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn man_page_and_completions_name_every_command() {
        let mut man = Vec::new();
        write_man(&mut man).unwrap();
        let man = String::from_utf8(man).unwrap();
        assert!(man.starts_with(".ie") || man.contains(".TH"), "roff");
        for sub in ["run", "once", "check", "queues", "table", "completions"] {
            assert!(man.contains(sub), "man lacks {sub}");
        }
        let mut bash = Vec::new();
        write_completions(clap_complete::Shell::Bash, &mut bash);
        let bash = String::from_utf8(bash).unwrap();
        assert!(bash.contains("complete") && bash.contains("--log-level"));
    }
}
