//! The seam between a queue's observed values and the table's cells.
//!
//! Everything that needs to know which columns a row has goes through here: building a
//! row, reading one back, measuring how much a queue's values moved, and naming each
//! value for the per-queue gauges. The rest of the pipeline handles [`Values`] as one
//! opaque thing, so the set of columns can change without touching it.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use crate::genesys::observations::QueueCounts;

/// One queue's observed values, one per written column.
pub type Values = QueueCounts;

/// The values paired with their column names, in column order.
pub fn columns(v: &Values) -> [(&'static str, u64); 5] {
    [
        ("Online", v.online),
        ("OnQueue", v.on_queue),
        ("Idle", v.idle),
        ("Interacting", v.interacting),
        ("Waiting", v.waiting),
    ]
}

/// The row the daemon writes for a queue: the key, its values, then `UpdatedAt`.
pub fn row_for(key: &str, v: &Values, at: DateTime<Utc>) -> Map<String, Value> {
    let mut row = Map::new();
    row.insert("key".into(), json!(key));
    for (column, value) in columns(v) {
        row.insert(column.into(), json!(value));
    }
    row.insert("UpdatedAt".into(), json!(timestamp(at)));
    row
}

/// The heartbeat row: the key and the time, nothing else.
pub fn heartbeat_row(key: &str, at: DateTime<Utc>) -> Map<String, Value> {
    let mut row = Map::new();
    row.insert("key".into(), json!(key));
    row.insert("UpdatedAt".into(), json!(timestamp(at)));
    row
}

/// `UpdatedAt` as written: RFC 3339, whole seconds, `Z`.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `at` at the precision the table holds (whole seconds), for comparing ages against it.
pub fn as_stored(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&timestamp(at)).map_or(at, |t| t.with_timezone(&Utc))
}

/// Reads back what a row holds, if it is a complete row of the daemon's shape.
pub fn parse_row(row: &Map<String, Value>) -> Option<(Values, DateTime<Utc>)> {
    let n = |c: &str| row.get(c).and_then(Value::as_u64);
    let at = row.get("UpdatedAt").and_then(Value::as_str)?;
    let at = DateTime::parse_from_rfc3339(at).ok()?.with_timezone(&Utc);
    Some((
        QueueCounts {
            online: n("Online")?,
            on_queue: n("OnQueue")?,
            idle: n("Idle")?,
            interacting: n("Interacting")?,
            waiting: n("Waiting")?,
        },
        at,
    ))
}

/// How much a queue's values moved, relative to the old values (for ordering writes):
/// the sum over the columns of |new - old| / max(old, 1).
pub fn change(old: &Values, new: &Values) -> f64 {
    columns(old)
        .iter()
        .zip(columns(new).iter())
        .map(|(&(_, o), &(_, n))| (n as f64 - o as f64).abs() / (o.max(1) as f64))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn counts(online: u64, waiting: u64) -> Values {
        QueueCounts {
            online,
            waiting,
            ..QueueCounts::default()
        }
    }

    #[test]
    fn rows_carry_every_column_and_a_z_timestamp() {
        let at = Utc
            .with_ymd_and_hms(2026, 11, 29, 4, 5, 6)
            .single()
            .unwrap_or_default();
        let c = QueueCounts {
            online: 5,
            on_queue: 4,
            idle: 1,
            interacting: 3,
            waiting: 2,
        };
        let row = row_for("Sales", &c, at);
        assert_eq!(
            Value::Object(row.clone()),
            json!({"key": "Sales", "Online": 5, "OnQueue": 4, "Idle": 1, "Interacting": 3, "Waiting": 2, "UpdatedAt": "2026-11-29T04:05:06Z"})
        );
        assert_eq!(parse_row(&row), Some((c, at)));
    }

    #[test]
    fn incomplete_rows_are_not_trusted() {
        let mut row = row_for("x", &QueueCounts::default(), Utc::now());
        row.remove("Idle");
        assert_eq!(parse_row(&row), None);
        let mut row = row_for("x", &QueueCounts::default(), Utc::now());
        row.insert("UpdatedAt".into(), json!("yesterday"));
        assert_eq!(parse_row(&row), None);
    }

    #[test]
    fn relative_change_weighs_small_queues_more() {
        assert!(change(&counts(1, 0), &counts(2, 0)) > change(&counts(50, 0), &counts(60, 0)));
        assert_eq!(change(&counts(3, 3), &counts(3, 3)), 0.0);
    }
}
