//! `check`: every prerequisite of a working daemon, one line each with a fix.

use std::path::Path;

use tokio_util::sync::CancellationToken;

use super::estimate::Estimate;
use super::exit;
use crate::config::{self, ProcessEnv};
use crate::genesys::Client;
use crate::genesys::datatable;
use crate::metrics::Metrics;
use crate::sync;

/// One line per check with ✓/✗ and a fix; exit 0 only if all pass.
pub async fn check(path: &Path) -> u8 {
    let mut ok = true;
    let mut line = |pass: bool, what: &str, detail: &str| {
        ok &= pass;
        println!("{} {what}: {detail}", if pass { "✓" } else { "✗" });
    };
    let cfg = match config::load(path, &ProcessEnv) {
        Ok(c) => c,
        Err(e) => {
            line(false, "config", &e.to_string());
            return exit::CONFIG;
        }
    };
    line(
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
    let client = match Client::new(&cfg, Metrics::new(), CancellationToken::new()) {
        Ok(c) => c,
        Err(e) => {
            line(false, "client", &format!("{e:#}"));
            return exit::FAILURE;
        }
    };
    match client.auth().token().await {
        Ok(_) => line(
            true,
            "login",
            &format!("token obtained from {}", cfg.login_url),
        ),
        Err(e) => {
            line(false, "login", &e.to_string());
            return exit::FAILURE;
        }
    }
    let mut selected = None;
    match sync::resolve(&client, &cfg).await {
        Ok(res) => {
            let targets = &res.targets;
            for name in &cfg.queue_names {
                match targets
                    .iter()
                    .find(|t| &t.name == name || t.name.eq_ignore_ascii_case(name))
                {
                    Some(t) => line(true, &format!("queue \"{name}\""), &format!("id {}", t.id)),
                    None => line(
                        false,
                        &format!("queue \"{name}\""),
                        "not found; fix: use the exact name from Admin > Contact Center > Queues",
                    ),
                }
            }
            for id in &cfg.queue_ids {
                match targets.iter().find(|t| &t.id == id) {
                    Some(t) => line(true, &format!("queue id {id}"), &format!("\"{}\"", t.name)),
                    None => line(
                        false,
                        &format!("queue id {id}"),
                        "not found; fix: check the id in queues.ids",
                    ),
                }
            }
            if !cfg.selection.patterns.is_empty() || !cfg.selection.divisions.is_empty() {
                let n = targets.len();
                line(
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
                line(
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
            selected = Some(targets.len());
        }
        Err(e) => line(
            false,
            "queues",
            &format!("{e}; fix: the OAuth client's role needs routing:queue:view"),
        ),
    }
    let table = datatable::find(&client, &cfg.table).await;
    match table {
        Ok(Some(t)) => {
            line(
                true,
                &format!("table {}", cfg.table),
                &format!("found (id {})", t.id),
            );
            let fields = cfg.columns.fields();
            let problems = datatable::check_schema(&t, &fields);
            if problems.is_empty() {
                line(
                    true,
                    "schema",
                    &format!("all {} columns present with the right types", fields.len()),
                );
            }
            for p in problems {
                line(false, "schema", &p.to_string());
            }
            for r in cfg.columns.retired(&t) {
                // Not a failure: the daemon blanks it, but a flow may still read it.
                line(
                    true,
                    "schema",
                    &format!(
                        "warning: column `{r}` is in the table but no longer in [columns]: the daemon blanks it in its rows; remove it from the flows that read it"
                    ),
                );
            }
        }
        Ok(None) => line(
            false,
            &format!("table {}", cfg.table),
            "not found; fix: run `genesys-queue-sync table create`, apply deploy/terraform, or create it in Architect",
        ),
        Err(e) => line(
            false,
            &format!("table {}", cfg.table),
            &format!("{e}; fix: the OAuth client's role needs architect:datatable:view"),
        ),
    }
    let n = selected.unwrap_or(cfg.queue_names.len() + cfg.queue_ids.len());
    let est = Estimate::new(&cfg, n);
    let (fits, detail) = est.verdict();
    line(fits, "budget", &detail);
    if ok { exit::OK } else { exit::FAILURE }
}
