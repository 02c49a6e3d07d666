//! The commands (one file each) and dispatch with exit codes.

mod check;
mod estimate;
pub mod once;
mod queues;
mod table;

use std::path::Path;

use tokio_util::sync::CancellationToken;

use crate::cli::{Cli, Command, TableCommand};
use crate::config::{self, Config, ConfigError, ProcessEnv};
use crate::daemon::{self, RunOptions};
use crate::reload::ReloadSource;
use crate::schedule::Exit;
use crate::telemetry::LogControl;

/// Exit codes, documented in the README.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILURE: u8 = 1;
    pub const CONFIG: u8 = 2;
    pub const STALLED: u8 = 3;
}

/// Runs the command; `log` changes the process's log filter (the config's `[log] level`).
pub async fn dispatch(cli: Cli, log: LogControl) -> u8 {
    match cli.command {
        Command::Run(c) => {
            let path = c.config.clone();
            with_config(&c.config, |cfg| async move {
                let opts = RunOptions {
                    log,
                    reload: reload_on_sighup(path),
                    ..RunOptions::new(shutdown_on_signals())
                };
                match daemon::run(cfg, opts).await {
                    Ok(Exit::Shutdown) => exit::OK,
                    Ok(Exit::Stalled(_)) => exit::STALLED,
                    Err(e) => {
                        tracing::error!("{e:#}");
                        exit::FAILURE
                    }
                }
            })
            .await
        }
        Command::Once { config, dry_run } => {
            with_config(&config.config, |cfg| async move {
                once::once(cfg, dry_run, shutdown_on_signals()).await
            })
            .await
        }
        Command::Check(c) => check::check(&c.config).await,
        Command::Queues(c) => with_config(&c.config, queues::command).await,
        // The binary runs the demo itself (the library has no simulator); this arm is only
        // reached in a build without the default `demo` feature.
        Command::Demo { .. } => {
            eprintln!(
                "error: this build has no demo: it was built without the default `demo` feature \
                 (cargo build --release --features demo)"
            );
            exit::CONFIG
        }
        Command::Table(TableCommand::Schema { config }) => table::schema(config.as_deref()),
        Command::Table(TableCommand::Create(c)) => with_config(&c.config, table::create).await,
        // Written by main before the logger and the runtime start.
        Command::Completions { .. } | Command::Man => exit::OK,
    }
}

async fn with_config<F, Fut>(path: &Path, f: F) -> u8
where
    F: FnOnce(Config) -> Fut,
    Fut: Future<Output = u8>,
{
    match config::load(path, &ProcessEnv) {
        Ok(cfg) => f(cfg).await,
        Err(e) => {
            report_config_error(path, &e);
            exit::CONFIG
        }
    }
}

fn report_config_error(path: &Path, e: &ConfigError) {
    eprintln!("error in {}: {e}", path.display());
}

/// Config reloads of `path` on SIGHUP. Installed before the first cycle, so a SIGHUP never
/// takes the signal's default action (ending the process).
fn reload_on_sighup(path: std::path::PathBuf) -> Option<ReloadSource> {
    match crate::reload::on_sighup() {
        Ok(requests) => Some(ReloadSource { path, requests }),
        Err(e) => {
            tracing::warn!(error = %e, "cannot handle SIGHUP: config reload is off");
            None
        }
    }
}

/// Cancels the returned token on SIGTERM or SIGINT.
pub fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = term => {}
        }
        tracing::info!("stop signal received");
        t.cancel();
    });
    token
}
