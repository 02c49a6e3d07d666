//! Who writes the table: the writer identity the heartbeat row carries, and noticing
//! another writer's.
//!
//! Two daemons pointed at one table (a copy-pasted config, a second cluster) overwrite
//! each other's rows, and Genesys has no conditional write to stop them. So each process
//! writes its identity (`host:pid:random`) into the heartbeat row's `Writer` field, and
//! reads the heartbeat row back once a cycle, before writing it: a row written since this
//! process started writing, by anyone else, is another writer. With a stable order of
//! writes the daemon whose heartbeat lands last may keep reading only its own; the other
//! one reads it every cycle, so at least one of two writers notices within a cycle of
//! both having written, and it then writes what it saw into its heartbeat (`; also
//! written by ...`), which `check` reports.
//!
//! Everything here is pure (the clock is passed in) and unit-tested.

use std::collections::VecDeque;
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::columns::UPDATED_AT;
pub use super::columns::WRITER;

/// Separates the writer's identity from what it saw in a `Writer` value.
const ALSO: &str = "; also written by ";

/// How long another writer, once seen, is named in this daemon's heartbeat.
pub const MEMORY: chrono::Duration = chrono::Duration::minutes(10);

/// The heartbeat `UpdatedAt` values this process wrote that a lagging read may still
/// return (Genesys reads can lag writes in some regions).
const RECENT: usize = 32;

/// This process's identity: host name, process id and a random part (a pid is reused
/// across restarts and containers; the random part is not). The same for every
/// pipeline of the process (a reload keeps it).
pub fn identity() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unknown-host".to_owned());
        format!(
            "{host}:{}:{:08x}",
            std::process::id(),
            rand::random::<u32>()
        )
    })
}

/// The identity part of a `Writer` value, and the writer it says it saw, if any.
pub fn parse(value: &str) -> (&str, Option<&str>) {
    match value.split_once(ALSO) {
        Some((id, seen)) => (id.trim(), Some(seen.trim())),
        None => (value.trim(), None),
    }
}

/// Another writer, as one heartbeat read showed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherWriter {
    /// Its identity, or a description when the row names none (an older version).
    pub writer: String,
    /// The heartbeat's `UpdatedAt` as it wrote it.
    pub updated_at: String,
}

/// What this process knows of the table's writers.
#[derive(Debug)]
pub struct Writers {
    me: String,
    /// When this process first wrote the heartbeat: rows older than that may be a
    /// previous process's (a restart), not another writer's.
    first_written: Option<DateTime<Utc>>,
    /// The `UpdatedAt` values of this process's recent heartbeat writes.
    recent: VecDeque<String>,
    /// The last other writer seen, and when.
    seen: Option<(OtherWriter, DateTime<Utc>)>,
}

impl Default for Writers {
    fn default() -> Self {
        Self::new(identity().to_owned())
    }
}

impl Writers {
    pub fn new(me: String) -> Self {
        Self {
            me,
            first_written: None,
            recent: VecDeque::new(),
            seen: None,
        }
    }

    pub fn me(&self) -> &str {
        &self.me
    }

    /// Reads the heartbeat row as the table holds it now (None: no such row); returns
    /// the other writer it shows, if it shows one.
    pub fn read(
        &mut self,
        row: Option<&Map<String, Value>>,
        now: DateTime<Utc>,
    ) -> Option<OtherWriter> {
        let first = self.first_written?;
        let row = row?;
        let updated_at = row.get(UPDATED_AT).and_then(Value::as_str).unwrap_or("");
        // Written before this process wrote its first heartbeat: not concurrent.
        let at = DateTime::parse_from_rfc3339(updated_at)
            .ok()
            .map(|t| t.with_timezone(&Utc));
        if at.is_some_and(|t| t < first - chrono::Duration::seconds(1)) {
            return None;
        }
        let writer = row.get(WRITER).and_then(Value::as_str).unwrap_or("");
        let (id, _) = parse(writer);
        let other = if id.is_empty() {
            // No identity: one of this process's own writes (a table without the
            // `Writer` field, or a lagging read), or a writer that writes none.
            if self.recent.iter().any(|r| r == updated_at) {
                return None;
            }
            "a writer that names itself nowhere (no Writer value: an older version, or another tool)".to_owned()
        } else if id == self.me {
            return None;
        } else {
            id.to_owned()
        };
        let other = OtherWriter {
            writer: other,
            updated_at: updated_at.to_owned(),
        };
        self.seen = Some((other.clone(), now));
        Some(other)
    }

    /// The `Writer` value of the next heartbeat: this identity, and the other writer seen
    /// within [`MEMORY`], if any.
    pub fn value(&self, now: DateTime<Utc>) -> String {
        match &self.seen {
            Some((o, at)) if now - *at <= MEMORY => {
                format!(
                    "{}{ALSO}{} (seen {})",
                    self.me,
                    o.writer,
                    super::columns::timestamp(*at)
                )
            }
            _ => self.me.clone(),
        }
    }

    /// The heartbeat was written with this `UpdatedAt`.
    pub fn wrote(&mut self, updated_at: &str, now: DateTime<Utc>) {
        self.first_written.get_or_insert(now);
        self.recent.push_back(updated_at.to_owned());
        while self.recent.len() > RECENT {
            self.recent.pop_front();
        }
    }
}

/// What `check` says of the heartbeat row as the table holds it: whether it shows a
/// single writer, and a line saying who wrote it, when, and what it saw.
pub fn describe(
    row: Option<&Map<String, Value>>,
    table_has_field: bool,
    now: DateTime<Utc>,
) -> (bool, String) {
    let Some(row) = row else {
        return (
            true,
            "no heartbeat row yet: no daemon has written this table since it was made".into(),
        );
    };
    let updated_at = row.get(UPDATED_AT).and_then(Value::as_str).unwrap_or("");
    let age = DateTime::parse_from_rfc3339(updated_at)
        .ok()
        .map(|t| now - t.with_timezone(&Utc));
    let ago = age.map_or_else(
        || format!("at \"{updated_at}\""),
        |a| format!("{} s ago", a.num_seconds().max(0)),
    );
    let writer = row.get(WRITER).and_then(Value::as_str).unwrap_or("");
    let (id, seen) = parse(writer);
    if id.is_empty() {
        let why = if table_has_field {
            "its writer names itself nowhere (a version without writer identity, or another tool)"
        } else {
            "the table has no `Writer` column, so a second daemon writing it goes unnoticed; fix: run `genesys-queue-sync table create` to add it"
        };
        return (true, format!("the heartbeat was written {ago}; {why}"));
    }
    match seen {
        Some(other) if age.is_none_or(|a| a <= MEMORY) => (
            false,
            format!(
                "two daemons write this table: {id} wrote the heartbeat {ago} and saw another writer's: {other}; they overwrite each other's rows; fix: stop one of them, or give each its own table (table.name)"
            ),
        ),
        _ => (true, format!("the heartbeat was written {ago} by {id}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 2, 10, 0, 0)
            .single()
            .unwrap_or_default()
            + chrono::Duration::seconds(s)
    }

    fn row(writer: Option<&str>, at: DateTime<Utc>) -> Map<String, Value> {
        let mut r = Map::new();
        r.insert("key".into(), json!("_heartbeat"));
        r.insert(
            UPDATED_AT.into(),
            json!(super::super::columns::timestamp(at)),
        );
        if let Some(w) = writer {
            r.insert(WRITER.into(), json!(w));
        }
        r
    }

    fn wrote(w: &mut Writers, at: DateTime<Utc>) {
        w.wrote(&super::super::columns::timestamp(at), at);
    }

    #[test]
    fn the_identity_names_host_pid_and_a_random_part() {
        let id = identity();
        let parts: Vec<&str> = id.rsplitn(3, ':').collect();
        assert_eq!(parts.len(), 3, "{id}");
        assert_eq!(parts[1], std::process::id().to_string());
        assert_eq!(parts[0].len(), 8);
        assert_eq!(identity(), id, "one identity per process");
    }

    #[test]
    fn nothing_is_another_writer_before_this_process_wrote_a_heartbeat() {
        // The row a previous process (a restart) left behind.
        let mut w = Writers::new("me".into());
        assert_eq!(w.read(Some(&row(Some("old:1:aa"), t(0))), t(5)), None);
        wrote(&mut w, t(10));
        // A lagging read may still show the previous process's row: older than our first.
        assert_eq!(w.read(Some(&row(Some("old:1:aa"), t(0))), t(11)), None);
        assert_eq!(w.read(None, t(11)), None, "no row: nothing to say");
    }

    #[test]
    fn another_identity_written_since_is_another_writer_and_is_named_for_ten_minutes() {
        let mut w = Writers::new("me".into());
        wrote(&mut w, t(0));
        assert_eq!(w.read(Some(&row(Some("me"), t(0))), t(60)), None);
        let seen = w.read(
            Some(&row(Some("other:7:bb; also written by me (seen x)"), t(60))),
            t(61),
        );
        assert_eq!(
            seen.map(|o| o.writer).as_deref(),
            Some("other:7:bb"),
            "the identity part only"
        );
        let v = w.value(t(62));
        assert_eq!(
            parse(&v),
            ("me", Some("other:7:bb (seen 2026-12-02T10:01:01Z)"))
        );
        assert_eq!(w.value(t(61) + MEMORY + chrono::Duration::seconds(1)), "me");
    }

    #[test]
    fn check_passes_one_writer_and_fails_a_heartbeat_that_saw_another() {
        let one = row(Some("host:1:aa"), t(0));
        let (ok, line) = describe(Some(&one), true, t(5));
        assert!(ok && line.contains("5 s ago by host:1:aa"), "{line}");
        let two = row(Some("host:1:aa; also written by other:2:bb (seen x)"), t(0));
        let (ok, line) = describe(Some(&two), true, t(5));
        assert!(
            !ok && line.contains("other:2:bb") && line.contains("fix"),
            "{line}"
        );
        // What it saw long ago is no longer news.
        let (ok, _) = describe(
            Some(&two),
            true,
            t(0) + MEMORY + chrono::Duration::seconds(1),
        );
        assert!(ok);
        let (ok, line) = describe(Some(&row(None, t(0))), false, t(5));
        assert!(ok && line.contains("table create"), "{line}");
        assert!(describe(None, true, t(0)).0);
    }

    #[test]
    fn a_row_without_identity_is_ours_only_if_we_wrote_its_updated_at() {
        let mut w = Writers::new("me".into());
        wrote(&mut w, t(0));
        wrote(&mut w, t(60));
        // A table without the Writer field: our own rows, even a lagging read of one.
        assert_eq!(w.read(Some(&row(None, t(60))), t(61)), None);
        assert_eq!(w.read(Some(&row(None, t(0))), t(61)), None);
        // An UpdatedAt we never wrote: someone else wrote it.
        let o = w.read(Some(&row(None, t(90))), t(91));
        assert!(o.is_some_and(|o| o.writer.contains("names itself nowhere")));
    }
}
