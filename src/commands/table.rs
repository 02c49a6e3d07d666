//! `table schema` and `table create`.

use std::path::Path;

use super::{exit, shutdown_on_signals};
use crate::config::{self, Config, TableRef};
use crate::genesys::Client;
use crate::genesys::datatable;
use crate::metrics::Metrics;
use crate::sync::columns::Columns;

/// `table schema`: the JSON schema of the table the daemon writes, for the config's
/// `[columns]` (the default five without a config).
pub fn schema(config: Option<&Path>) -> u8 {
    let columns = match config.map(config::load_columns) {
        None => Columns::default(),
        Some(Ok(c)) => c,
        Some(Err(e)) => {
            eprintln!("error: {e}");
            return exit::CONFIG;
        }
    };
    match serde_json::to_string_pretty(&datatable::schema_json(&columns.schema_fields())) {
        Ok(s) => {
            println!("{s}");
            exit::OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::FAILURE
        }
    }
}

/// `table create`: creates the table, or adds the columns it lacks.
pub async fn create(cfg: Config) -> u8 {
    let client = match Client::new(&cfg, Metrics::new(), shutdown_on_signals()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            return exit::FAILURE;
        }
    };
    let fields = cfg.columns.schema_fields();
    let existing = datatable::find(&client, &cfg.table).await;
    let result = match (existing, &cfg.table) {
        (Err(e), _) => Err(e.to_string()),
        (Ok(None), TableRef::Id(id)) => Err(format!(
            "no table with id {id}; set table.name to create one by name"
        )),
        (Ok(None), TableRef::Name(n)) => datatable::create_table(&client, n, &fields)
            .await
            .map(|t| {
                format!(
                    "created table \"{}\" (id {}) with columns {}",
                    t.name,
                    t.id,
                    column_list(&cfg.columns)
                )
            })
            .map_err(|e| e.to_string()),
        (Ok(Some(t)), _) => {
            let wrong: Vec<String> = datatable::check_schema(&t, &fields)
                .into_iter()
                .filter(|p| matches!(p, datatable::SchemaProblem::WrongType { .. }))
                .map(|p| p.to_string())
                .collect();
            if !wrong.is_empty() {
                // The table is unusable whatever is added: change nothing, explain.
                Err(format!(
                    "table \"{}\" left unchanged: {}",
                    t.name,
                    wrong.join("; ")
                ))
            } else {
                match datatable::add_missing_columns(&client, &t, &fields).await {
                    Ok(added) if added.is_empty() => {
                        Ok(format!("table \"{}\" already has every column", t.name))
                    }
                    Ok(added) => Ok(format!(
                        "table \"{}\": added columns {} (existing columns kept as they are)",
                        t.name,
                        added.join(", ")
                    )),
                    Err(e) => Err(e.to_string()),
                }
            }
        }
    };
    match result {
        Ok(msg) => {
            println!("✓ {msg}");
            exit::OK
        }
        Err(e) => {
            println!("✗ {e}");
            exit::FAILURE
        }
    }
}

fn column_list(columns: &Columns) -> String {
    columns
        .schema_fields()
        .iter()
        .map(|(c, t)| format!("{c} ({})", t.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}
