//! The column registry: the one place that knows what a column is.
//!
//! A column is a name and a metric of the [`VOCABULARY`] with its filters. From the
//! configured columns everything else derives: the observation query (exactly the API
//! metrics they need, `detailMetrics` only for age columns), a queue's values from its
//! typed observation, the table's fields in order (`key`, the columns, `UpdatedAt`
//! last), rows written and read back, the CSV header and the change measure that orders
//! writes. Adding a metric means adding one entry to [`VOCABULARY`] (and teaching the
//! simulator to answer it); nothing else names a metric.

mod vocabulary;

use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use crate::genesys::datatable::schema::{ColumnType, Table};
use crate::genesys::observations::{Query, QueueObservation};
pub use vocabulary::{
    Column, Filter, MAX_NAME_LEN, MetricDef, SpecError, Unit, VOCABULARY, check_name, column,
    metric,
};

/// The row key field, always first.
pub const KEY: &str = "key";
/// The time the row's values were observed, always last.
pub const UPDATED_AT: &str = "UpdatedAt";
/// The heartbeat row's field naming its writer (a string field; optional: a table made
/// before it existed works without it, `table create` adds it). Who writes it and why:
/// `sync::writer`.
pub const WRITER: &str = "Writer";
/// A table holds 50 fields; `key` and `UpdatedAt` take two.
pub const MAX_COLUMNS: usize = 48;

/// The columns in written order. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns {
    list: Arc<[Column]>,
}

/// The columns without `[columns]`: the five written before columns were configurable.
const DEFAULT_FIVE: [(&str, &str); 5] = [
    ("Online", "online"),
    ("OnQueue", "on_queue"),
    ("Idle", "idle"),
    ("Interacting", "interacting"),
    ("Waiting", "waiting"),
];

impl Default for Columns {
    /// Today's five columns, so tables and flows made before `[columns]` keep working.
    fn default() -> Self {
        let list: Vec<Column> = DEFAULT_FIVE
            .iter()
            .filter_map(|(name, m)| {
                Some(Column {
                    name: (*name).to_owned(),
                    metric: metric(m)?,
                    filter: Filter::default(),
                })
            })
            .collect();
        Self { list: list.into() }
    }
}

/// A refused set of columns: which one (by position) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnsError {
    /// The position of the offending column; None for the set as a whole.
    pub index: Option<usize>,
    pub error: SpecError,
}

impl Columns {
    /// Checks a set of columns: at least one, at most [`MAX_COLUMNS`], names distinct
    /// ignoring case (Genesys and flows treat `Waiting` and `waiting` alike in places).
    pub fn new(list: Vec<Column>) -> Result<Self, ColumnsError> {
        if list.is_empty() {
            return Err(ColumnsError {
                index: None,
                error: SpecError::new(
                    "[columns] is empty",
                    "list at least one column, or remove [columns] to write the default five (Online, OnQueue, Idle, Interacting, Waiting)",
                ),
            });
        }
        if list.len() > MAX_COLUMNS {
            return Err(ColumnsError {
                index: Some(MAX_COLUMNS),
                error: SpecError::new(
                    format!(
                        "{} columns are configured; a data table holds 50 fields, two of them key and UpdatedAt",
                        list.len()
                    ),
                    format!("configure at most {MAX_COLUMNS} columns"),
                ),
            });
        }
        for (i, c) in list.iter().enumerate() {
            if let Some(first) = list[..i]
                .iter()
                .find(|o| o.name.eq_ignore_ascii_case(&c.name))
            {
                return Err(ColumnsError {
                    index: Some(i),
                    error: SpecError::new(
                        format!(
                            "`{}` repeats the column `{}` (names are compared ignoring case)",
                            c.name, first.name
                        ),
                        "give each column its own name",
                    ),
                });
            }
        }
        Ok(Self { list: list.into() })
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Column> {
        self.list.iter()
    }

    /// A queue's values as the per-queue gauges take them: each column's unit, name and
    /// value, in column order (after a cycle and, in push mode, after an event).
    pub fn gauge_values<'a>(
        &'a self,
        values: &'a Values,
    ) -> impl Iterator<Item = (&'static str, &'a str, i64)> + 'a {
        self.iter()
            .zip(values.iter())
            .map(|(c, v)| (c.unit().as_str(), c.name.as_str(), *v as i64))
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn get(&self, name: &str) -> Option<&Column> {
        self.list.iter().find(|c| c.name == name)
    }

    /// The observation query these columns need, and nothing more.
    pub fn query(&self) -> Query {
        let mut q = Query::default();
        for c in self.iter() {
            q.metrics.extend(c.metric.needs.iter().copied());
            q.detail.extend(c.metric.detail.iter().copied());
        }
        q
    }

    /// The values of a queue's observation, in column order.
    pub fn values(&self, o: &QueueObservation, now: DateTime<Utc>) -> Values {
        Values(self.iter().map(|c| c.value(o, now)).collect())
    }

    /// The table's fields in display order: `key`, the columns, `UpdatedAt`.
    pub fn fields(&self) -> Vec<(&str, ColumnType)> {
        let mut f = Vec::with_capacity(self.len() + 2);
        f.push((KEY, ColumnType::String));
        f.extend(self.iter().map(|c| (c.name.as_str(), ColumnType::Integer)));
        f.push((UPDATED_AT, ColumnType::String));
        f
    }

    /// The row the daemon writes for a queue.
    pub fn row(&self, key: &str, values: &Values, at: DateTime<Utc>) -> Map<String, Value> {
        let mut row = Map::new();
        row.insert(KEY.into(), json!(key));
        for (c, v) in self.iter().zip(values.0.iter()) {
            row.insert(c.name.clone(), json!(v));
        }
        row.insert(UPDATED_AT.into(), json!(timestamp(at)));
        row
    }

    /// Reads back what a row holds, if it is a complete row of these columns (a row
    /// missing a column, e.g. one added to the config since, is not trusted and so is
    /// rewritten).
    pub fn parse_row(&self, row: &Map<String, Value>) -> Option<(Values, DateTime<Utc>)> {
        let at = row.get(UPDATED_AT).and_then(Value::as_str)?;
        let at = DateTime::parse_from_rfc3339(at).ok()?.with_timezone(&Utc);
        let values = self
            .iter()
            .map(|c| row.get(&c.name).and_then(Value::as_u64))
            .collect::<Option<Vec<u64>>>()?;
        Some((Values(values), at))
    }

    /// Whether `field` is one the daemon writes (a column, `key`, `UpdatedAt`, or the
    /// heartbeat's `Writer`).
    pub fn writes(&self, field: &str) -> bool {
        field == KEY
            || field == UPDATED_AT
            || field == WRITER
            || self.list.iter().any(|c| c.name == field)
    }

    /// The fields `table create` and `table schema` make: [`Self::fields`] and the
    /// heartbeat's `Writer` (a string, optional for the daemon: a table made before it
    /// existed works without it, only the heartbeat then names no writer), just before
    /// `UpdatedAt`, which stays last.
    pub fn schema_fields(&self) -> Vec<(&str, ColumnType)> {
        let mut f = self.fields();
        f.insert(f.len() - 1, (WRITER, ColumnType::String));
        f
    }

    /// Fields of `table` the daemon wrote once but no longer does: fields it created
    /// (marked with [`FIELD_MARKER`](crate::genesys::datatable::FIELD_MARKER)) or the five it wrote before `[columns]` existed,
    /// now missing from the config. Fields cannot be removed from a schema, so the
    /// daemon blanks them in its rows instead of carrying their last values along:
    /// a number that stops changing but sits in a row with a fresh `UpdatedAt` would
    /// mislead every flow that still reads it.
    pub fn retired(&self, table: &Table) -> Vec<String> {
        table
            .columns
            .keys()
            .filter(|f| !self.writes(f))
            .filter(|f| table.marked.contains(*f) || DEFAULT_FIVE.iter().any(|(n, _)| n == f))
            .cloned()
            .collect()
    }

    /// The heartbeat row: the key and the time, no values.
    pub fn heartbeat_row(key: &str, at: DateTime<Utc>) -> Map<String, Value> {
        let mut row = Map::new();
        row.insert(KEY.into(), json!(key));
        row.insert(UPDATED_AT.into(), json!(timestamp(at)));
        row
    }

    /// How much a queue's values moved from `old` (held since `old_at`) to `new` (at
    /// `new_at`), for deciding what is due and ordering writes: None when nothing
    /// changed, else the sum of the relative changes.
    ///
    /// A seconds column (the oldest waiting interaction's age) that only aged is not a
    /// change: the same interaction still waits, so its start (`at` − age) is the same
    /// within [`AGE_TOLERANCE_S`] (whole seconds and `UpdatedAt`'s second precision
    /// round both ways). A flow reads such a value as of the row's `UpdatedAt` (the age
    /// now is the value plus now − `UpdatedAt`), so the row is still right, and it is
    /// rewritten at `rows.refresh_after` like any unchanged row. What is a change: a wait
    /// starting (0 → n) or ending (n → 0), and another interaction becoming the oldest.
    pub fn change(
        &self,
        old: &Values,
        old_at: DateTime<Utc>,
        new: &Values,
        new_at: DateTime<Utc>,
    ) -> Option<f64> {
        if old == new {
            return None;
        }
        let elapsed = (new_at - old_at).num_seconds();
        let mut changed = false;
        let weight = self
            .iter()
            .zip(old.0.iter().zip(new.0.iter()))
            .map(|(c, (&o, &n))| {
                let moved = match c.unit() {
                    Unit::Seconds if o > 0 && n > 0 => {
                        // How far the oldest wait's start moved.
                        let shift = n as i64 - o as i64 - elapsed;
                        if shift.abs() <= AGE_TOLERANCE_S {
                            0
                        } else {
                            shift.unsigned_abs()
                        }
                    }
                    _ => n.abs_diff(o),
                };
                changed |= moved > 0;
                moved as f64 / o.max(1) as f64
            })
            .sum();
        changed.then_some(weight)
    }
}

/// How far (seconds) the start of the oldest wait, as a seconds column and `UpdatedAt`
/// give it, may move before it counts as another interaction: each of the two ages and
/// the stored `UpdatedAt` is rounded to whole seconds.
pub const AGE_TOLERANCE_S: i64 = 2;

/// A queue's values, one per column in column order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Values(pub Vec<u64>);

impl Values {
    pub fn iter(&self) -> std::slice::Iter<'_, u64> {
        self.0.iter()
    }
}

/// `UpdatedAt`'s format: RFC 3339 UTC, whole seconds, `Z`.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `at` at the precision the table holds (whole seconds), for comparing ages against it.
pub fn as_stored(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&timestamp(at)).map_or(at, |t| t.with_timezone(&Utc))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;
    use crate::genesys::observations::ApiMetric;
    use chrono::TimeZone;

    pub(crate) fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 2, h, m, s).single().unwrap()
    }

    pub(crate) fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    /// The 13 columns.
    pub(crate) fn thirteen() -> Columns {
        type Spec<'a> = (&'a str, &'a str, Option<&'a [&'a str]>, Option<&'a str>);
        let specs: &[Spec<'_>] = &[
            ("Online", "online", None, None),
            ("OnQueue", "on_queue", None, None),
            ("Idle", "idle", None, None),
            ("Interacting", "interacting", None, None),
            ("Waiting", "waiting", None, None),
            ("WaitingVoice", "waiting", Some(&["voice"]), None),
            (
                "WaitingDigital",
                "waiting",
                Some(&["message", "email", "chat"]),
                None,
            ),
            ("Members", "members", None, None),
            ("OffQueue", "off_queue", None, None),
            ("OnBreak", "presence", None, Some("BREAK")),
            ("NotResponding", "not_responding", None, None),
            ("Alerting", "alerting", None, None),
            (
                "LongestWaitingSeconds",
                "longest_waiting_seconds",
                None,
                None,
            ),
        ];
        let list = specs
            .iter()
            .map(|(n, m, media, p)| {
                let media = media.map(s);
                column(n, m, media.as_deref(), *p).unwrap()
            })
            .collect();
        Columns::new(list).unwrap()
    }

    #[test]
    fn the_query_asks_for_exactly_what_the_columns_need() {
        let q = Columns::default().query();
        assert_eq!(
            q.metrics.into_iter().collect::<Vec<_>>(),
            [
                ApiMetric::OnQueueUsers,
                ApiMetric::UserPresences,
                ApiMetric::Waiting
            ]
        );
        assert!(q.detail.is_empty(), "no age column, no detailMetrics");
        let q = thirteen().query();
        assert_eq!(
            q.metrics.into_iter().collect::<Vec<_>>(),
            [
                ApiMetric::Alerting,
                ApiMetric::MemberUsers,
                ApiMetric::OffQueueUsers,
                ApiMetric::OnQueueUsers,
                ApiMetric::UserPresences,
                ApiMetric::Waiting
            ]
        );
        assert_eq!(
            q.detail.into_iter().collect::<Vec<_>>(),
            [ApiMetric::Waiting]
        );
    }

    #[test]
    fn default_columns_are_todays_five_and_rows_round_trip() {
        let cols = Columns::default();
        let names: Vec<&str> = cols.fields().iter().map(|f| f.0).collect();
        assert_eq!(
            names,
            [
                "key",
                "Online",
                "OnQueue",
                "Idle",
                "Interacting",
                "Waiting",
                "UpdatedAt"
            ]
        );
        let v = Values(vec![5, 4, 1, 3, 2]);
        let row = cols.row("Sales", &v, at(4, 5, 6));
        assert_eq!(
            Value::Object(row.clone()),
            json!({"key": "Sales", "Online": 5, "OnQueue": 4, "Idle": 1, "Interacting": 3, "Waiting": 2, "UpdatedAt": "2026-12-02T04:05:06Z"})
        );
        assert_eq!(cols.parse_row(&row), Some((v, at(4, 5, 6))));
        let mut short = row.clone();
        short.remove("Idle");
        assert_eq!(
            cols.parse_row(&short),
            None,
            "an incomplete row is not trusted"
        );
        let mut bad = row;
        bad.insert("UpdatedAt".into(), json!("yesterday"));
        assert_eq!(cols.parse_row(&bad), None);
    }

    #[test]
    fn change_weighs_small_queues_more_and_ignores_aging() {
        let cols = Columns::default();
        let v = |a, b| Values(vec![a, 0, 0, 0, b]);
        let t0 = at(10, 0, 0);
        let t1 = at(10, 1, 0);
        assert_eq!(cols.change(&v(3, 3), t0, &v(3, 3), t1), None);
        assert!(
            cols.change(&v(1, 0), t0, &v(2, 0), t1).unwrap()
                > cols.change(&v(50, 0), t0, &v(60, 0), t1).unwrap()
        );
        let age = Columns::new(vec![
            column("W", "waiting", None, None).unwrap(),
            column("L", "longest_waiting_seconds", None, None).unwrap(),
        ])
        .unwrap();
        // The same caller still waits a minute later: no change (the row read as of its
        // UpdatedAt is still right), and rounding either way is not one.
        for later in [89, 90, 91, 92, 88] {
            assert_eq!(
                age.change(&Values(vec![1, 30]), t0, &Values(vec![1, later]), t1),
                None,
                "aged to {later}"
            );
        }
        // The stored UpdatedAt is truncated to the second: still no change.
        let t1_frac = t1 + chrono::Duration::milliseconds(900);
        assert_eq!(
            age.change(&Values(vec![1, 30]), t0, &Values(vec![1, 91]), t1_frac),
            None
        );
        // A newer interaction became the oldest (3 s or more apart): a change.
        assert!(
            age.change(&Values(vec![1, 30]), t0, &Values(vec![1, 87]), t1)
                .is_some()
        );
        // A wait starting (0 -> n) and ending (n -> 0) are changes.
        assert!(
            age.change(&Values(vec![0, 0]), t0, &Values(vec![0, 4]), t1)
                .is_some()
        );
        assert!(
            age.change(&Values(vec![0, 30]), t0, &Values(vec![0, 0]), t1)
                .is_some()
        );
        // The oldest caller was answered: a real change.
        assert!(
            age.change(&Values(vec![2, 30]), t0, &Values(vec![1, 5]), t1)
                .unwrap()
                > 1.0
        );
    }
}
