//! Observation: the selected queues' current values, ⌈N/100⌉ queries per cycle.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::columns::{Columns, Values};
use super::report::{CycleReport, Stage};
use super::selection::Target;
use crate::genesys::observations::{self, MAX_QUEUES_PER_QUERY};
use crate::genesys::{ApiError, Client};

/// One queue's values as observed this cycle.
#[derive(Debug, Clone)]
pub struct Observation {
    pub target: Target,
    pub values: Values,
    /// When the answer holding these values arrived.
    pub at: DateTime<Utc>,
}

/// What observing the selection found.
#[derive(Debug, Default)]
pub struct Observed {
    /// The queues observed, in selection order.
    pub queues: Vec<Observation>,
    /// Queries sent (each counts against the request budget).
    pub reads: usize,
    /// Ids of queues missing from an answer (deleted, no longer visible, or nothing to
    /// report): worth looking up.
    pub missing_from_answer: Vec<String>,
}

/// Observes `targets` in batches of [`MAX_QUEUES_PER_QUERY`], asking for what `columns`
/// need. A failed batch or a queue missing from its answer is reported as failed and
/// keeps its old row; only a cancellation stops the cycle.
pub async fn observe(
    client: &Client,
    columns: &Columns,
    targets: &[Target],
    report: &mut CycleReport,
) -> Result<Observed, ApiError> {
    let ids: Vec<String> = targets.iter().map(|t| t.id.clone()).collect();
    let label = |id: &str| {
        targets
            .iter()
            .find(|t| t.id == id)
            .map_or_else(|| id.to_owned(), |t| t.name.clone())
    };
    let query = columns.query();
    let mut counts: HashMap<String, (Values, DateTime<Utc>)> = HashMap::new();
    let mut failed_ids: HashSet<&str> = HashSet::new();
    for batch in ids.chunks(MAX_QUEUES_PER_QUERY) {
        match observations::observe(client, batch, &query).await {
            Ok(got) => {
                // The values of age columns are taken at the answer's arrival.
                let at = Utc::now();
                counts.extend(
                    got.into_iter()
                        .map(|(id, o)| (id, (columns.values(&o, at), at))),
                );
            }
            Err(ApiError::Cancelled) => return Err(ApiError::Cancelled),
            Err(e) => {
                tracing::warn!(error = %e, queues = batch.len(), "observation query failed; those queues keep their old rows");
                for id in batch {
                    failed_ids.insert(id);
                    report.fail(
                        label(id),
                        Stage::Observe,
                        format!("observation failed: {e}"),
                    );
                }
            }
        }
    }
    let mut observed = Observed {
        reads: ids.len().div_ceil(MAX_QUEUES_PER_QUERY),
        ..Observed::default()
    };
    for t in targets {
        match counts.remove(&t.id) {
            Some((values, at)) => {
                report.observed.push((t.clone(), values.clone()));
                observed.queues.push(Observation {
                    target: t.clone(),
                    values,
                    at,
                });
            }
            None if !failed_ids.contains(t.id.as_str()) => {
                tracing::warn!(queue = %t.name, id = %t.id, "queue missing from the observation answer (deleted or not visible?); its row is left as it was");
                report.fail(
                    t.name.clone(),
                    Stage::Observe,
                    "not in the observation answer".into(),
                );
                observed.missing_from_answer.push(t.id.clone());
            }
            None => {}
        }
    }
    Ok(observed)
}
