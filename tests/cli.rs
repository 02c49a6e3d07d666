//! The command-line conventions operators rely on, through the real binary: `--version`,
//! `--log-level` validation, colour (`NO_COLOR`, `--color`), one-shot commands quiet by
//! default, journald priority prefixes, completions and the man page.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use genesys_sim::{Fault, FaultAction, Match, SimOptions};
use support::*;
use tokio::process::Command;

/// Runs the binary with exactly `env` (plus PATH) and a 60 s bound.
async fn run_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("binary finished within 60 s")
        .expect("binary runs")
}

#[tokio::test]
async fn version_names_the_git_revision_and_the_build_date() {
    let out = run_env(&["--version"], &[]).await;
    assert!(out.status.success());
    let line = String::from_utf8(out.stdout).unwrap();
    // genesys-queue-sync 0.1.0 (rev 0123456789ab, built 2026-12-02)
    let rest = line
        .trim()
        .strip_prefix(&format!(
            "genesys-queue-sync {} (rev ",
            env!("CARGO_PKG_VERSION")
        ))
        .unwrap_or_else(|| panic!("{line}"));
    let (rev, date) = rest.split_once(", built ").unwrap();
    let date = date.strip_suffix(')').unwrap();
    assert!(
        chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok(),
        "{line}"
    );
    // Built from a git checkout (as here and in CI), the revision is HEAD's.
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output();
    if let Ok(h) = head {
        if h.status.success() {
            assert_eq!(rev, String::from_utf8(h.stdout).unwrap().trim(), "{line}");
        }
    }
}

#[tokio::test]
async fn a_log_level_that_is_neither_level_nor_filter_exits_2_and_says_why() {
    for bad in ["verbose", "info,chatty", "=debug"] {
        let out = run_env(&["--log-level", bad, "table", "schema"], &[]).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {stderr}");
        assert!(
            stderr.contains("neither a log level") && stderr.contains("--log-level"),
            "{bad}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "nothing ran");
    }
    for good in ["debug", "warn,genesys_queue_sync=trace"] {
        let out = run_env(&["--log-level", good, "table", "schema"], &[]).await;
        assert!(out.status.success(), "{good}: {out:?}");
    }
}

#[tokio::test]
async fn a_bad_rust_log_is_reported_not_silently_obeyed() {
    let out = run_env(&["table", "schema"], &[("RUST_LOG", "verbose")]).await;
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("RUST_LOG ignored"), "{stderr}");
}

/// A simulator with one busy queue and a config for it.
async fn sim_with_sales() -> (genesys_sim::Sim, ConfigFile) {
    let (sim, cfg) = sales().await;
    (sim, cfg)
}

fn with_secret<'a>(cfg: &'a ConfigFile, args: &[&'a str]) -> Vec<&'a str> {
    let mut v = args.to_vec();
    v.extend(["--config", cfg.path.to_str().unwrap()]);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_color_turns_colour_off_and_color_always_turns_it_back_on() {
    let (_sim, cfg) = sim_with_sales().await;
    let args = with_secret(
        &cfg,
        &["--log-format", "text", "--log-level", "info", "once"],
    );
    let stderr = |o: &Output| String::from_utf8_lossy(&o.stderr).into_owned();
    let secret = ("GENESYSCLOUD_OAUTHCLIENT_SECRET", SECRET);

    // A pipe is not a terminal: CLICOLOR_FORCE stands in for one.
    let forced = run_env(&args, &[secret, ("CLICOLOR_FORCE", "1")]).await;
    assert!(forced.status.success(), "{forced:?}");
    assert!(stderr(&forced).contains('\x1b'), "colour when forced");

    let no_color = run_env(&args, &[secret, ("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]).await;
    assert!(no_color.status.success());
    assert!(stderr(&no_color).contains("obtained an access token"));
    assert!(!stderr(&no_color).contains('\x1b'), "{}", stderr(&no_color));

    let mut always = vec!["--color", "always"];
    always.extend(&args);
    let always = run_env(&always, &[secret, ("NO_COLOR", "1")]).await;
    assert!(
        stderr(&always).contains('\x1b'),
        "an explicit flag beats NO_COLOR"
    );

    let mut never = vec!["--color", "never"];
    never.extend(&args);
    let never = run_env(&never, &[secret, ("CLICOLOR_FORCE", "1")]).await;
    assert!(!stderr(&never).contains('\x1b'));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_shot_commands_print_results_on_stdout_and_log_only_warnings_by_default() {
    let (_sim, cfg) = sim_with_sales().await;
    let secret = ("GENESYSCLOUD_OAUTHCLIENT_SECRET", SECRET);
    let quiet = run_env(
        &with_secret(&cfg, &["--log-format", "text", "once"]),
        &[secret],
    )
    .await;
    let (stdout, stderr) = text(&quiet);
    assert!(quiet.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("Sales") && stdout.contains("1 row written"),
        "{stdout}"
    );
    assert!(
        !stderr.contains("INFO"),
        "no progress lines without --log-level: {stderr}"
    );
    let loud = run_env(
        &with_secret(
            &cfg,
            &["--log-format", "text", "--log-level", "info", "once"],
        ),
        &[secret],
    )
    .await;
    let (stdout, stderr) = text(&loud);
    assert!(
        stderr.contains("INFO") && stderr.contains("obtained an access token"),
        "{stderr}"
    );
    assert!(!stdout.contains("INFO"), "logs never on stdout: {stdout}");
}

/// The two ends of a stream socket like the one journald hands a service: the child's
/// end and `device:inode` for JOURNAL_STREAM.
fn journal_socket() -> (UnixStream, OwnedFd, String) {
    let (ours, theirs) = UnixStream::pair().unwrap();
    let meta = std::fs::File::from(theirs.as_fd().try_clone_to_owned().unwrap())
        .metadata()
        .unwrap();
    let stream = format!("{}:{}", meta.dev(), meta.ino());
    (ours, OwnedFd::from(theirs), stream)
}

/// Collects the lines read from `sock` on a thread of their own.
fn collect_lines(sock: UnixStream) -> Arc<Mutex<Vec<String>>> {
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let l = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(sock).lines() {
            let Ok(line) = line else { break };
            l.lock().unwrap().push(line);
        }
    });
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_journald_every_line_starts_with_its_syslog_priority() {
    // A queue that does not exist (a warning) and a row write answered 404, as when the
    // table is deleted under the daemon (an error); trace shows the API answers.
    let sim = spawn_sim(SimOptions::default()).await;
    add_busy_queue(&sim, "Sales");
    sim.inject(Fault {
        matcher: Match::Path {
            method: Some("POST"),
            contains: "/rows".into(),
        },
        action: FaultAction::Status {
            status: 404,
            retry_after: None,
        },
        times: 1,
    });
    let cfg = config_file(&sim, &queues_toml(&["Sales", "Nowhere"]));
    let (ours, theirs, stream) = journal_socket();
    let mut child = bin_command(
        &["--log-level", "trace", "run"],
        &cfg.path,
        &[("JOURNAL_STREAM", stream.as_str())],
    )
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::from(theirs))
    .spawn()
    .unwrap();
    let lines = collect_lines(ours);
    let has = |prefix: &str| lines.lock().unwrap().iter().any(|l| l.starts_with(prefix));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !(has("<3>") && has("<4>") && has("<6>") && has("<7>")) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "all four priorities within 20 s: {:?}",
            lines.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.start_kill().unwrap();
    let _ = child.wait().await;
    let lines = lines.lock().unwrap().clone();
    for l in &lines {
        let (prefix, rest) = l.split_at(3);
        let level = match prefix {
            "<3>" => "ERROR",
            "<4>" => "WARN",
            "<6>" => "INFO",
            "<7>" => rest.trim_start().split(' ').next().unwrap_or_default(),
            _ => panic!("a line without priority: {l}"),
        };
        assert!(rest.trim_start().starts_with(level), "{l}");
        assert!(
            ["DEBUG", "TRACE", "INFO", "WARN", "ERROR"].contains(&level),
            "{l}"
        );
        assert!(!rest.contains('\x1b'), "no colour in the journal: {l:?}");
    }
    // The start-up line says which build runs.
    let start = lines
        .iter()
        .find(|l| l.contains("genesys-queue-sync") && l.contains("running"))
        .expect("a start-up line");
    assert!(
        start.starts_with("<6>")
            && start.contains(&format!("version={}", env!("CARGO_PKG_VERSION")))
            && start.contains(&format!(
                "revision={}",
                genesys_queue_sync::version::REVISION
            )),
        "{start}"
    );
    let errors: Vec<&String> = lines.iter().filter(|l| l.starts_with("<3>")).collect();
    assert!(
        errors.iter().any(|l| l.contains("data table disappeared")),
        "the failed cycle is an error (journalctl -p err shows it): {errors:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("<4>") && l.contains("Nowhere")),
        "the missing queue is a warning"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journal_stream_naming_another_stream_is_not_journald() {
    // Inherited JOURNAL_STREAM while stderr goes elsewhere (a pipe here): normal output.
    let (_sim, cfg) = sim_with_sales().await;
    let out = run_env(
        &with_secret(
            &cfg,
            &["--log-format", "text", "--log-level", "info", "once"],
        ),
        &[
            ("GENESYSCLOUD_OAUTHCLIENT_SECRET", SECRET),
            ("JOURNAL_STREAM", "8:123456"),
        ],
    )
    .await;
    let (_, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.is_empty());
    for l in stderr.lines() {
        assert!(!l.starts_with('<'), "{l}");
        assert!(
            l.as_bytes().first().is_some_and(u8::is_ascii_digit),
            "timestamped: {l}"
        );
    }
}

#[tokio::test]
async fn completions_and_man_page_are_generated() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef genesys-queue-sync"),
        ("fish", "complete -c genesys-queue-sync"),
    ] {
        let out = run_env(&["completions", shell], &[]).await;
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(script.contains(marker), "{shell}: {script:.200}");
        assert!(
            script.contains("log-level") && script.contains("once"),
            "{shell}"
        );
    }
    let out = run_env(&["man"], &[]).await;
    assert!(out.status.success());
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(page.contains(".TH genesys-queue-sync 1"), "{page:.300}");
    let out = run_env(&["completions", "tcsh"], &[]).await;
    assert_eq!(out.status.code(), Some(2), "unknown shell is a usage error");
}
