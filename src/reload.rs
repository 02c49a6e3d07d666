//! Config reload (SIGHUP): read and validate the file again; what can change while the
//! daemon runs takes effect from the next cycle, what cannot is named with the fix (a
//! restart). An invalid file changes nothing: the daemon keeps running on the config it
//! has and logs why. Deciding what a reload changes ([`plan`]) is pure; the run loop
//! performs it between cycles.

use std::path::PathBuf;

use secrecy::ExposeSecret;
use tokio::sync::mpsc;

use crate::config::Config;

/// Where a reload reads the config from, and the requests to do it (one per SIGHUP).
pub struct ReloadSource {
    pub path: PathBuf,
    pub requests: mpsc::Receiver<()>,
}

/// What a valid new config changes, relative to the one running.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReloadPlan {
    /// The settings that differ and take effect from the next cycle, by config key.
    pub applied: Vec<&'static str>,
    /// Settings that differ but only a restart can change: (key, running value, new value).
    pub need_restart: Vec<(&'static str, String, String)>,
    /// Credentials, URLs, timeout or request budget changed: a new API client (and a new
    /// login). Otherwise the running client, its token and its request window are kept.
    pub new_client: bool,
    /// The cron expression changed.
    pub reschedule: bool,
    /// `schedule.mode` changed: push is started or stopped between cycles (and, in push
    /// mode, restarted with a new client when `new_client`, so its requests stay in the
    /// same budget as the cycles'). `push.min_interval` applies to the running push.
    pub mode_changed: bool,
}

impl ReloadPlan {
    pub fn changes_nothing(&self) -> bool {
        self.applied.is_empty() && self.need_restart.is_empty()
    }
}

/// Compares the running config with a new, valid one. Values are compared through their
/// `Debug` form where the type has no `PartialEq` (it is the value's whole content, and
/// the secret's `Debug` is redacted, so the secret is compared by itself).
pub fn plan(old: &Config, new: &Config) -> ReloadPlan {
    fn same<T: std::fmt::Debug>(a: &T, b: &T) -> bool {
        format!("{a:?}") == format!("{b:?}")
    }
    let mut p = ReloadPlan::default();
    let client_keys: [(&'static str, bool); 6] = [
        ("genesys.api_url", old.api_url == new.api_url),
        ("genesys.login_url", old.login_url == new.login_url),
        ("genesys.client_id", old.client_id == new.client_id),
        (
            "genesys.client_secret",
            old.client_secret.expose_secret() == new.client_secret.expose_secret(),
        ),
        (
            "genesys.request_timeout",
            old.request_timeout == new.request_timeout,
        ),
        (
            "limits.requests_per_minute",
            old.requests_per_minute == new.requests_per_minute,
        ),
    ];
    for (key, unchanged) in client_keys {
        if !unchanged {
            p.applied.push(key);
            p.new_client = true;
        }
    }
    let others: [(&'static str, bool); 15] = [
        ("table", old.table == new.table),
        ("table.key", same(&old.key_by, &new.key_by)),
        ("table.write_mode", same(&old.write_mode, &new.write_mode)),
        ("table.owned", old.table_owned == new.table_owned),
        ("queues.names", old.queue_names == new.queue_names),
        ("queues.ids", old.queue_ids == new.queue_ids),
        ("queues", same(&old.selection, &new.selection)),
        (
            "queues.resolve_every",
            old.resolve_every == new.resolve_every,
        ),
        ("schedule.cron", old.schedule.cron == new.schedule.cron),
        ("schedule.mode", old.mode == new.mode),
        (
            "push.min_interval",
            old.push_min_interval == new.push_min_interval,
        ),
        (
            "limits.write_concurrency",
            old.write_concurrency == new.write_concurrency,
        ),
        ("rows", same(&old.rows, &new.rows)),
        ("columns", same(&old.columns, &new.columns)),
        ("http.queue_metrics", old.queue_metrics == new.queue_metrics),
    ];
    for (key, unchanged) in others {
        if !unchanged {
            p.applied.push(key);
        }
    }
    if old.log_level != new.log_level {
        p.applied.push("log.level");
    }
    p.reschedule = old.schedule.cron != new.schedule.cron;
    p.mode_changed = old.mode != new.mode;
    if old.http_listen != new.http_listen {
        let show = |a: Option<std::net::SocketAddr>| a.map_or("off".to_owned(), |a| a.to_string());
        p.need_restart
            .push(("http.listen", show(old.http_listen), show(new.http_listen)));
    }
    p
}

/// The config the daemon runs with after a reload: the new one, except what only a
/// restart can change, which keeps its running value (so the config in force says what
/// is really in force).
pub fn effective(old: &Config, mut new: Config) -> Config {
    new.http_listen = old.http_listen;
    new
}

/// Sends a request on the returned channel for every SIGHUP. Without a SIGHUP handler the
/// signal's default action would end the process.
pub fn on_sighup() -> anyhow::Result<mpsc::Receiver<()>> {
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            // A reload already queued reads the file as it is then: one is enough.
            let _ = tx.try_send(());
        }
    });
    Ok(rx)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::tests::base_with as cfg;

    #[test]
    fn the_same_file_changes_nothing() {
        let p = plan(&cfg(""), &cfg(""));
        assert!(p.changes_nothing(), "{p:?}");
        assert!(!p.new_client && !p.reschedule);
    }

    #[test]
    fn queues_schedule_columns_and_log_level_apply_without_a_new_client() {
        let old = cfg("");
        let new = cfg(
            "\n[schedule]\ncron = \"*/10 * * * * *\"\n\n[log]\nlevel = \"debug\"\n\n[columns]\nIdle = \"idle\"\n",
        );
        let mut new = new;
        new.queue_names.push("Billing".into());
        let p = plan(&old, &new);
        assert_eq!(
            p.applied,
            ["queues.names", "schedule.cron", "columns", "log.level"]
        );
        assert!(p.reschedule);
        assert!(!p.new_client, "the token and the request window are kept");
        assert!(p.need_restart.is_empty());
    }

    #[test]
    fn mode_and_min_interval_apply_live() {
        let old = cfg("");
        let new = cfg("\n[schedule]\nmode = \"push\"\n\n[push]\nmin_interval = \"10s\"\n");
        let p = plan(&old, &new);
        assert_eq!(p.applied, ["schedule.mode", "push.min_interval"]);
        assert!(p.mode_changed && !p.new_client && !p.reschedule);
        assert!(p.need_restart.is_empty(), "nothing needs a restart");
        let back = plan(&new, &old);
        assert!(back.mode_changed);
        let only_interval = plan(&new, &cfg("\n[schedule]\nmode = \"push\"\n"));
        assert_eq!(only_interval.applied, ["push.min_interval"]);
        assert!(!only_interval.mode_changed);
    }

    #[test]
    fn a_new_budget_or_credential_needs_a_new_client() {
        let p = plan(&cfg(""), &cfg("\n[limits]\nrequests_per_minute = 120\n"));
        assert_eq!(p.applied, ["limits.requests_per_minute"]);
        assert!(p.new_client);
        let mut new = cfg("");
        new.client_id = "other".into();
        assert!(plan(&cfg(""), &new).new_client);
    }

    #[test]
    fn the_listen_address_needs_a_restart_and_keeps_its_running_value() {
        let old = cfg("");
        let new = cfg("\n[http]\nlisten = \":9999\"\n");
        let p = plan(&old, &new);
        assert!(p.applied.is_empty());
        assert_eq!(
            p.need_restart,
            [(
                "http.listen",
                "127.0.0.1:9464".to_owned(),
                "0.0.0.0:9999".to_owned()
            )]
        );
        assert_eq!(effective(&old, new).http_listen, old.http_listen);
    }
}
