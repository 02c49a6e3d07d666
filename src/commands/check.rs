//! `check`: every prerequisite of a working daemon, one line each with a fix. Besides the
//! config, login, queues, table and schema, it makes each call `run` will make ([`probe`]),
//! so a permission the OAuth client lacks fails here, named, and not in every cycle. In
//! push mode it also proves the notification channel, topic and WebSocket ([`push`]).

mod probe;
mod push;

use std::path::Path;

use tokio_util::sync::CancellationToken;

use super::estimate::Estimate;
use super::exit;
use crate::config::{self, Mode, OnVanish, ProcessEnv, WriteMode};
use crate::genesys::Client;
use crate::genesys::datatable;
use crate::genesys::permissions::{self, Call};
use crate::metrics::Metrics;
use crate::sync;
use probe::Probe;

/// The printed lines, and whether any failed.
struct Lines {
    ok: bool,
}

impl Lines {
    fn line(&mut self, pass: bool, what: &str, detail: &str) {
        self.ok &= pass;
        println!("{} {what}: {detail}", if pass { "✓" } else { "✗" });
    }

    fn probe(&mut self, what: &str, p: Probe) {
        match p {
            Probe::Proven(d) => self.line(true, what, &d),
            Probe::Failed(d) => self.line(false, what, &d),
            // Not a failure: nothing safe could be tried, and the line says so.
            Probe::NotProven(d) => println!("! {what}: {d}"),
        }
    }
}

/// One line per check with ✓/✗ (or `!` for what could not be proven) and a fix; exit 0
/// only if none failed.
pub async fn check(path: &Path) -> u8 {
    let mut out = Lines { ok: true };
    let cfg = match config::load(path, &ProcessEnv) {
        Ok(c) => c,
        Err(e) => {
            out.line(false, "config", &e.to_string());
            return exit::CONFIG;
        }
    };
    out.line(
        true,
        "config",
        &format!(
            "{} is valid (API {}, table {}, {} configured queues, schedule \"{}\")",
            path.display(),
            cfg.api_url,
            cfg.table,
            cfg.queue_names.len() + cfg.queue_ids.len(),
            cfg.schedule.cron
        ),
    );
    // Where each connection setting came from (never the secret itself).
    let s = &cfg.sources;
    out.line(true, "API URL", &format!("{} {}", cfg.api_url, s.api_url));
    out.line(
        true,
        "login URL",
        &format!("{} {}", cfg.login_url, s.login_url),
    );
    out.line(
        true,
        "client id",
        &format!("{} {}", cfg.client_id, s.client_id),
    );
    out.line(
        true,
        "client secret",
        &format!("(not shown) {}", s.client_secret),
    );
    let client = match Client::new(&cfg, Metrics::new(), CancellationToken::new()) {
        Ok(c) => c,
        Err(e) => {
            out.line(false, "client", &format!("{e:#}"));
            return exit::FAILURE;
        }
    };
    match client.auth().token().await {
        Ok(_) => out.line(
            true,
            "login",
            &format!("token obtained from {}", cfg.login_url),
        ),
        Err(e) => {
            out.line(false, "login", &e.to_string());
            return exit::FAILURE;
        }
    }
    let mut selected: Option<Vec<sync::Target>> = None;
    match sync::resolve(&client, &cfg).await {
        Ok(res) => {
            let targets = &res.targets;
            for name in &cfg.queue_names {
                match targets
                    .iter()
                    .find(|t| &t.name == name || t.name.eq_ignore_ascii_case(name))
                {
                    Some(t) => {
                        out.line(true, &format!("queue \"{name}\""), &format!("id {}", t.id))
                    }
                    None => out.line(
                        false,
                        &format!("queue \"{name}\""),
                        "not found; fix: use the exact name from Admin > Contact Center > Queues",
                    ),
                }
            }
            for id in &cfg.queue_ids {
                match targets.iter().find(|t| &t.id == id) {
                    Some(t) => {
                        out.line(true, &format!("queue id {id}"), &format!("\"{}\"", t.name))
                    }
                    None => out.line(
                        false,
                        &format!("queue id {id}"),
                        "not found; fix: check the id in queues.ids",
                    ),
                }
            }
            if !cfg.selection.patterns.is_empty() || !cfg.selection.divisions.is_empty() {
                let n = targets.len();
                out.line(
                    n > 0,
                    "queues.match/divisions",
                    &if n > 0 {
                        format!(
                            "{} selected in all (see `genesys-queue-sync queues`)",
                            crate::text::count(n, "queue", "queues")
                        )
                    } else {
                        "match no queue; fix: check the patterns (* is the wildcard) and division names or ids".to_owned()
                    },
                );
            }
            if !res.left_out.is_empty() {
                out.line(
                    false,
                    "table limit",
                    &format!(
                        "{} left out (a table holds 5,000 rows), e.g. {}; fix: narrow queues.match or queues.divisions",
                        crate::text::count(res.left_out.len(), "queue is", "queues are"),
                        res.left_out
                            .iter()
                            .take(5)
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
            selected = Some(res.targets);
        }
        Err(e) => out.line(
            false,
            "queues",
            &permissions::explain_403(Call::ListQueues, &e, "the queues")
                .unwrap_or_else(|| e.to_string()),
        ),
    }
    let table = datatable::find(&client, &cfg.table).await;
    let mut table_id = None;
    let mut schema_fits = false;
    match table {
        Ok(Some(t)) => {
            table_id = Some(t.id.clone());
            out.line(
                true,
                &format!("table {}", cfg.table),
                &format!("found (id {})", t.id),
            );
            let fields = cfg.columns.fields();
            let problems = datatable::check_schema(&t, &fields);
            schema_fits = problems.is_empty();
            if problems.is_empty() {
                out.line(
                    true,
                    "schema",
                    &format!("all {} columns present with the right types", fields.len()),
                );
            }
            for p in problems {
                out.line(false, "schema", &p.to_string());
            }
            if let Some(key) = &cfg.rows.heartbeat_key {
                // Who writes the table: two daemons on one table fight silently.
                let has_field = t.columns.contains_key(sync::writer::WRITER);
                let (pass, detail) = match datatable::get_row(&client, &t.id, key).await {
                    Ok(row) => sync::writer::describe(row.as_ref(), has_field, chrono::Utc::now()),
                    Err(e) => (
                        false,
                        format!("could not read the heartbeat row `{key}`: {e}"),
                    ),
                };
                out.line(pass, "writer", &detail);
            }
            for r in cfg.columns.retired(&t) {
                // Not a failure: the daemon blanks it, but a flow may still read it.
                out.line(
                    true,
                    "schema",
                    &format!(
                        "warning: column `{r}` is in the table but no longer in [columns]: the daemon blanks it in its rows; remove it from the flows that read it"
                    ),
                );
            }
        }
        Ok(None) => out.line(
            false,
            &format!("table {}", cfg.table),
            "not found; fix: run `genesys-queue-sync table create`, apply deploy/terraform, or create it in Architect",
        ),
        Err(e) => out.line(
            false,
            &format!("table {}", cfg.table),
            &permissions::explain_403(Call::FindTable, &e, "the table")
                .unwrap_or_else(|| e.to_string()),
        ),
    }
    // The calls `run` makes every cycle, each once.
    let targets = selected.as_deref().unwrap_or_default();
    if selected.is_some() {
        out.probe("observations", probe::observe(&client, &cfg, targets).await);
        if cfg.mode == Mode::Push {
            for (what, p) in push::check(&client, &cfg, targets).await {
                out.probe(what, p);
            }
        }
    }
    if let Some(id) = &table_id {
        out.probe("row read", probe::read_rows(&client, id).await);
        if schema_fits {
            out.probe("row write", probe::write(&client, &cfg, id, targets).await);
        } else {
            // `run` writes nothing into a table of the wrong shape; neither does check.
            out.probe(
                "row write",
                Probe::NotProven("not tried until the schema fits".into()),
            );
        }
        if matches!(cfg.write_mode, WriteMode::Import | WriteMode::Auto) {
            out.probe("import", probe::import(&client, id).await);
        }
        if cfg.selection.on_vanish == OnVanish::Delete {
            out.probe("row delete", probe::delete(&client, id).await);
        }
    }
    let n = selected.map_or(cfg.queue_names.len() + cfg.queue_ids.len(), |t| t.len());
    let est = Estimate::new(&cfg, n);
    let (fits, detail) = est.verdict();
    out.line(fits, "budget", &detail);
    out.line(true, "staleness", &crate::staleness::sentence(&cfg));
    if out.ok { exit::OK } else { exit::FAILURE }
}
