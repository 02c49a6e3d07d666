//! Observation: the selected queues' current values, ⌈N/batch⌉ queries per cycle.

use std::collections::{HashMap, HashSet, VecDeque};

use chrono::{DateTime, Utc};

use super::columns::{Columns, Values};
use super::report::{CycleReport, Stage};
use super::selection::Target;
use crate::genesys::observations::{self, MAX_QUEUES_PER_QUERY, QueueObservation};
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

/// How many queue ids go into one observation query. Genesys does not document its
/// maximum: the configured `limits.queues_per_query` (100 by default) is used until
/// Genesys answers 400 to a query of more than one queue; then the batch is split in half
/// and retried, and the smaller size holds for the rest of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSize(usize);

impl BatchSize {
    pub fn new(configured: usize) -> Self {
        Self(configured.clamp(1, MAX_QUEUES_PER_QUERY))
    }

    pub fn get(self) -> usize {
        self.0
    }
}

/// Observes `targets` in batches of `batch` queue ids, asking for what `columns` need. A
/// failed batch or a queue missing from its answer is reported as failed and keeps its
/// old row; only a cancellation stops the cycle.
///
/// A 400 to a query of several queues splits it in half (depth first) and lowers `batch`
/// for good. A 400 to a query of one queue is that queue's error, not the size's: the
/// size found this cycle is then not kept, and no further query of this cycle is split,
/// so a query Genesys refuses whatever its size costs about 2·⌈log2(batch)⌉ requests per
/// batch (15 for 100 queues), never one per queue.
///
/// With `raw`, every queue's raw observation is kept there too (push mode merges events
/// into it); without, it is dropped once its values are computed.
///
/// Up to `concurrency` queries are in flight at once (each still goes through the
/// client's request budget): at 5,000 queues the 50 queries take ⌈50/4⌉ round trips
/// instead of 50.
pub async fn observe(
    client: &Client,
    columns: &Columns,
    targets: &[Target],
    batch: &mut BatchSize,
    concurrency: usize,
    report: &mut CycleReport,
    mut raw: Option<&mut Vec<(String, QueueObservation)>>,
) -> Result<Observed, ApiError> {
    if let Some(raw) = raw.as_deref_mut() {
        raw.clear();
    }
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
    let at_start = *batch;
    let mut reads = 0;
    // Set once a single queue's query answered 400: 400s are then not about the size.
    let mut refused_alone = false;
    let mut pending: VecDeque<&[String]> = ids.chunks(batch.0).collect();
    // Queries sent together; one at a time once a 400 came, so a query refused whatever
    // its size still costs what it cost sequentially (see above).
    let mut width = concurrency.max(1);
    loop {
        // The next pieces to send together; a piece cut before the size was lowered is
        // cut again first (never send a size known to fail).
        let mut wave: Vec<&[String]> = Vec::new();
        while wave.len() < width {
            let Some(piece) = pending.pop_front() else {
                break;
            };
            if piece.len() > batch.0 {
                for c in piece.chunks(batch.0).rev() {
                    pending.push_front(c);
                }
                continue;
            }
            wave.push(piece);
        }
        if wave.is_empty() {
            break;
        }
        reads += wave.len();
        let mut queries = Vec::with_capacity(wave.len());
        for piece in &wave {
            queries.push(observations::observe(client, piece, &query));
        }
        let answers = futures_util::future::join_all(queries).await;
        // Pieces split this wave go back to the front in their order.
        let mut split: Vec<&[String]> = Vec::new();
        for (piece, answer) in wave.into_iter().zip(answers) {
            match answer {
                Ok(got) => {
                    // The values of age columns are taken at the answer's arrival.
                    let at = Utc::now();
                    for (id, o) in got {
                        counts.insert(id.clone(), (columns.values(&o, at), at));
                        if let Some(raw) = raw.as_deref_mut() {
                            raw.push((id, o));
                        }
                    }
                }
                Err(ApiError::Cancelled) => return Err(ApiError::Cancelled),
                Err(e) if e.status() == Some(400) && piece.len() > 1 && !refused_alone => {
                    width = 1;
                    let half = piece.len().div_ceil(2);
                    tracing::debug!(queues = piece.len(), error = %e, "observation query answered 400; splitting it in half");
                    batch.0 = batch.0.min(half);
                    let (first, second) = piece.split_at(half);
                    split.push(first);
                    split.push(second);
                }
                Err(e) if e.status() == Some(400) && piece.len() == 1 => {
                    width = 1;
                    refused_alone = true;
                    let id = piece[0].as_str();
                    tracing::warn!(queue = %label(id), id, error = %e, "Genesys refused the observation query for this queue alone (400); its row keeps its old values");
                    failed_ids.insert(id);
                    report.fail(
                        label(id),
                        Stage::Observe,
                        format!("observation query refused for this queue (400): {e}"),
                    );
                }
                Err(e) => {
                    tracing::warn!(error = %e, queues = piece.len(), "observation query failed; those queues keep their old rows");
                    for id in piece {
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
        for piece in split.into_iter().rev() {
            pending.push_front(piece);
        }
    }
    if refused_alone {
        *batch = at_start;
    } else if *batch != at_start {
        tracing::warn!(
            was = at_start.0,
            now = batch.0,
            "Genesys answered 400 to observation queries of more queues; queries hold at most {} queues for the rest of the process (set limits.queues_per_query = {} to start there)",
            batch.0,
            batch.0
        );
    }
    let mut observed = Observed {
        reads,
        queues: Vec::with_capacity(counts.len()),
        ..Observed::default()
    };
    report.observed.reserve_exact(counts.len());
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
