//! Thin entry point: parse arguments, start logging, dispatch, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;
use genesys_queue_sync::cli::{Cli, Command};
use genesys_queue_sync::telemetry::{self, LogSettings};

#[cfg(feature = "demo")]
mod demo;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Generated text for packagers and shells: no logger, no runtime.
    match &cli.command {
        Command::Completions { shell } => {
            genesys_queue_sync::cli::write_completions(*shell, &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        Command::Man => {
            return match genesys_queue_sync::cli::write_man(&mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: cannot write the man page: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        _ => {}
    }
    let settings = LogSettings {
        format: cli.log_format,
        color: cli.color,
        level: cli.log_level.clone(),
        default_level: if cli.command.is_one_shot() {
            "warn"
        } else {
            "info"
        },
    };
    let log = match telemetry::init(&settings) {
        Ok(log) => log,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    #[cfg(feature = "demo")]
    if let genesys_queue_sync::cli::Command::Demo {
        cycles,
        every,
        push,
    } = cli.command
    {
        let demo = async {
            let shutdown = genesys_queue_sync::commands::shutdown_on_signals();
            demo::run(cycles, every, push, shutdown).await
        };
        return match runtime.block_on(demo) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("demo failed: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    ExitCode::from(runtime.block_on(genesys_queue_sync::commands::dispatch(cli, log)))
}
