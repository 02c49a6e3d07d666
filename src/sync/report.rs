//! What a cycle did, as one typed value: the daemon turns it into logs, metrics and
//! health, `once` prints it, the tests assert on it.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::columns::{Columns, Values};
use super::selection::Target;
use crate::config::TableRef;
use crate::genesys::ApiError;

/// How a cycle went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every selected queue's row holds its current values.
    Ok,
    /// Some queues failed; the others were kept fresh.
    Partial,
    /// The cycle stopped, or no queue could be observed.
    Failed,
}

impl Outcome {
    /// The `outcome` label of `cycles_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Partial => "partial",
            Self::Failed => "failed",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where in the pipeline something failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Getting a token.
    Login,
    /// Finding the table, checking its schema, listing its rows.
    Table,
    /// Resolving the configured selection into queues.
    Resolve,
    /// Reading the queues' observations.
    Observe,
    /// Writing one row.
    Write,
    /// Writing every row through one CSV import job.
    Import,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Table => "table",
            Self::Resolve => "resolve",
            Self::Observe => "observe",
            Self::Write => "write",
            Self::Import => "import",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A queue whose row was not kept fresh this cycle (it keeps what it held).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueFailure {
    /// The queue's name (its id when the name is not known).
    pub queue: String,
    pub stage: Stage,
    /// Why, as a sentence for logs and `once`.
    pub reason: String,
}

/// The problem that stopped a cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CycleFailure {
    pub stage: Stage,
    pub message: String,
}

impl fmt::Display for CycleFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// What a cycle did.
#[derive(Debug, Default, Clone)]
pub struct CycleReport {
    pub started: Option<DateTime<Utc>>,
    pub duration: Duration,
    pub dry_run: bool,
    /// The columns the values below are of, in order.
    pub columns: Columns,
    /// Observed queues and their values, in selection order.
    pub observed: Vec<(Target, Values)>,
    /// The rows written this cycle and the values they got (the heartbeat row not included).
    pub written: Vec<(Target, Values)>,
    /// Rows that were due but left for the next cycle to stay inside the budget.
    pub deferred: usize,
    /// Rows not written because nothing changed and they are fresh enough.
    pub skipped: usize,
    /// Whether the rows went out as one CSV import.
    pub imported: bool,
    /// Queues that were not kept fresh, with the stage and the reason.
    pub failed: Vec<QueueFailure>,
    /// Configured queue names and ids Genesys does not know (from the last resolution).
    pub missing: Vec<String>,
    /// A problem that stopped the cycle before writing anything.
    pub error: Option<CycleFailure>,
    /// Whether a token could be had; None when the cycle did not get that far.
    pub logged_in: Option<bool>,
    /// Whether the cycle ended with a usable table (found, schema fits, not lost during
    /// the writes); None when it did not look (a dry run, or no token).
    pub table_ok: Option<bool>,
    /// Another writer whose heartbeat this cycle found in the table.
    pub other_writer: Option<super::writer::OtherWriter>,
}

impl CycleReport {
    pub fn outcome(&self) -> Outcome {
        if self.error.is_some() || (self.observed.is_empty() && !self.failed.is_empty()) {
            Outcome::Failed
        } else if self.failed.is_empty() {
            Outcome::Ok
        } else {
            Outcome::Partial
        }
    }

    /// Queues whose row holds their current values after this cycle: written, or
    /// unchanged and fresh enough; none when the cycle stopped.
    pub fn fresh(&self) -> usize {
        if self.error.is_some() {
            0
        } else {
            self.written.len() + self.skipped
        }
    }

    pub(super) fn fail(&mut self, queue: String, stage: Stage, reason: String) {
        self.failed.push(QueueFailure {
            queue,
            stage,
            reason,
        });
    }

    pub fn summary(&self) -> String {
        match &self.error {
            Some(e) => format!("cycle failed: {e}"),
            None => format!(
                "{} observed, {} written{}, {} unchanged, {} deferred, {} failed in {} ms",
                self.observed.len(),
                self.written.len(),
                if self.imported { " (import)" } else { "" },
                self.skipped,
                self.deferred,
                self.failed.len(),
                self.duration.as_millis()
            ),
        }
    }
}

/// A problem that stops a cycle.
#[derive(Debug, thiserror::Error)]
pub enum CycleError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(
        "data table {0} not found: create it (`genesys-queue-sync table create`, Terraform, or Architect > Data Tables) or fix [table] in the config"
    )]
    TableMissing(TableRef),
    #[error("data table \"{table}\" does not fit: {problems}")]
    Schema { table: String, problems: String },
    #[error("none of the configured queues exists; check [queues]")]
    NoQueues,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(key: &str) -> Target {
        Target::new(key.into(), key.into(), key.into(), String::new())
    }

    #[test]
    fn outcome_reflects_failures() {
        let mut r = CycleReport::default();
        assert_eq!(r.outcome(), Outcome::Ok);
        r.fail("q".into(), Stage::Observe, "x".into());
        assert_eq!(r.outcome(), Outcome::Failed, "nothing observed");
        r.observed.push((t("a"), Values::default()));
        assert_eq!(r.outcome(), Outcome::Partial);
        r.error = Some(CycleFailure {
            stage: Stage::Import,
            message: "import failed".into(),
        });
        assert_eq!(r.outcome(), Outcome::Failed);
    }

    #[test]
    fn unchanged_rows_count_as_fresh_unless_the_cycle_stopped() {
        let mut r = CycleReport {
            skipped: 2,
            ..CycleReport::default()
        };
        r.written.push((t("a"), Values::default()));
        assert_eq!(r.fresh(), 3);
        r.error = Some(CycleFailure {
            stage: Stage::Table,
            message: "table gone".into(),
        });
        assert_eq!(r.fresh(), 0);
    }
}
