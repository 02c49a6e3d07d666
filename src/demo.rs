//! `demo`: the real daemon against the built-in simulated org, with the table drawn live.
//!
//! Part of the binary (declared in `main.rs` behind the default `demo` feature), not of the
//! library: the daemon's library never depends on the simulator crate.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use genesys_queue_sync::daemon::{self, RunOptions};
use genesys_queue_sync::loopback::{self, LocalOrg};
use genesys_queue_sync::schedule::Exit;
use genesys_queue_sync::sync::columns::Columns;
use genesys_sim::{FieldType, RoutingStatus, Sim, SimOptions, SystemPresence};
use serde_json::{Map, Value};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

const QUEUES: &[(&str, u32)] = &[
    ("Sales", 8),
    ("Support", 12),
    ("Billing", 4),
    ("Tech Support / EU", 6),
];
const TABLE: &str = "QueueAgentCounts";

/// Builds a simulated org with a few queues and agents and the table the daemon writes.
async fn seeded_sim(churn: Option<Duration>) -> anyhow::Result<(Sim, Vec<String>)> {
    let sim = Sim::start(SimOptions {
        churn,
        ..SimOptions::default()
    })
    .await
    .context("starting the simulated org")?;
    let presences = [
        (SystemPresence::OnQueue, RoutingStatus::Idle),
        (SystemPresence::OnQueue, RoutingStatus::Interacting),
        (SystemPresence::Available, RoutingStatus::OffQueue),
        (SystemPresence::Offline, RoutingStatus::OffQueue),
        (SystemPresence::Break, RoutingStatus::OffQueue),
    ];
    let mut names = Vec::new();
    for (i, (name, agents)) in QUEUES.iter().enumerate() {
        let id = sim.add_queue(name);
        for a in 0..*agents {
            let (p, r) = presences[(a as usize + i) % presences.len()];
            sim.add_agent(p, r, &[id.as_str()]);
        }
        sim.set_waiting(&id, "voice", i as u32 + 1);
        names.push((*name).to_owned());
    }
    sim.create_table(TABLE, &table_fields(&Columns::default()));
    Ok((sim, names))
}

/// The fields of `columns` (after `key`) as simulator field types, for creating a table.
fn table_fields(columns: &Columns) -> Vec<(&str, FieldType)> {
    columns
        .schema_fields()
        .into_iter()
        .skip(1)
        .filter_map(|(c, t)| FieldType::from_wire(t.as_str()).map(|ft| (c, ft)))
        .collect()
}

/// Runs the demo until `cycles` cycles have finished (or until `shutdown`).
pub async fn run(
    cycles: Option<u32>,
    every: u32,
    push: bool,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let (sim, names) = seeded_sim(Some(Duration::from_millis(1500))).await?;
    let creds = SimOptions::default();
    let base_url = sim.base_url();
    let org = LocalOrg {
        base_url: &base_url,
        client_id: &creds.client_id,
        client_secret: &creds.client_secret,
        table: TABLE,
    };
    let mut cfg = loopback::config(&org, names, &format!("*/{every} * * * * *"))?;
    if push {
        cfg.mode = genesys_queue_sync::config::Mode::Push;
        cfg.push_min_interval = Duration::from_secs(1);
        println!(
            "Push mode: rows follow the org within seconds over its Notifications API; each table below is what a reconciliation cycle found, push's writes in between included."
        );
    }
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let health_addr = listener.local_addr()?;
    println!(
        "Simulated Genesys Cloud org at {} (agents change state every 1.5 s).",
        sim.base_url()
    );
    println!(
        "Daemon health and metrics at http://{health_addr}/metrics, cycle every {every} s; {}. Ctrl-C to stop.\n",
        genesys_queue_sync::staleness::sentence(&cfg)
    );

    let table_id = sim.table_id(TABLE).context("demo table missing")?;
    let previous: Arc<Mutex<BTreeMap<String, Map<String, Value>>>> = Arc::default();
    let done = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let stop = shutdown.clone();
    let (sim2, prev2, done2) = (sim.clone(), previous.clone(), done.clone());
    let columns = cfg.columns.clone();
    let mut opts = RunOptions::new(shutdown);
    opts.listener = Some(listener);
    opts.on_cycle = Some(Arc::new(move |report| {
        let rows = sim2.rows(&table_id);
        if let Ok(mut prev) = prev2.lock() {
            print!("{}", draw(&columns, &rows, &prev, &report.summary()));
            *prev = rows;
        }
        let n = done2.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        if cycles.is_some_and(|c| n >= c) {
            stop.cancel();
        }
    }));
    let exit = daemon::run(cfg, opts).await?;
    let requests = sim.requests();
    println!(
        "\n{} cycles, {} API requests in all (table lookups by flows would cost none).",
        done.load(std::sync::atomic::Ordering::SeqCst),
        requests.len()
    );
    sim.shutdown();
    match exit {
        Exit::Shutdown => Ok(()),
        Exit::Stalled(d) => anyhow::bail!("schedule stalled for {}s", d.as_secs()),
    }
}

/// The table as a flow would see it; changed cells are marked with `*`.
fn draw(
    columns: &Columns,
    rows: &BTreeMap<String, Map<String, Value>>,
    prev: &BTreeMap<String, Map<String, Value>>,
    summary: &str,
) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let width = rows
        .keys()
        .map(|k| k.chars().count())
        .max()
        .unwrap_or(3)
        .max(3);
    let _ = write!(out, "{:<width$}", "key");
    let fields = columns.fields();
    for (c, _) in &fields[1..] {
        let _ = write!(out, "  {c:>11}");
    }
    out.push('\n');
    for (key, row) in rows {
        let _ = write!(out, "{key:<width$}");
        for (c, _) in &fields[1..] {
            let v = row.get(*c).map(cell).unwrap_or_default();
            let changed = prev
                .get(key)
                .and_then(|p| p.get(*c))
                .map(cell)
                .is_some_and(|old| old != v);
            let shown = if *c == "UpdatedAt" {
                v.get(11..19).unwrap_or(&v).to_owned()
            } else {
                v
            };
            let _ = write!(out, "  {:>10}{}", shown, if changed { "*" } else { " " });
        }
        out.push('\n');
    }
    let _ = writeln!(out, "({summary}; * = changed since last cycle)\n");
    out
}

fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
