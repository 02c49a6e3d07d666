//! The write plan, case by case: no simulator, no clock.

use super::*;
use chrono::TimeZone;

fn t(key: &str) -> Target {
    Target::new(format!("id-{key}"), key.into(), key.into(), String::new())
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 2, 10, 0, 0)
        .single()
        .unwrap_or_default()
}

fn mins(m: i64) -> chrono::Duration {
    chrono::Duration::minutes(m)
}

/// Values of the default columns (Online, OnQueue, Idle, Interacting, Waiting).
fn waiting(n: u64) -> Values {
    Values(vec![0, 0, 0, 0, n])
}

/// 60 s period, 300 requests/minute, refresh after 5 min, heartbeat on, rows mode.
fn policy() -> Policy {
    Policy {
        write_mode: WriteMode::Rows,
        period: Duration::from_secs(60),
        requests_per_minute: 300,
        refresh_after: Duration::from_secs(300),
        heartbeat_key: Some("_heartbeat".into()),
        columns: Columns::default(),
        name_checks: false,
    }
}

/// A cycle's inputs: the selection, what was observed, what the table holds.
#[derive(Default)]
struct Case {
    targets: Vec<Target>,
    observed: Vec<Observation>,
    held: HashMap<String, Held>,
    keys: HashSet<String>,
    import_failures: HashMap<String, u32>,
    names: Option<NameCheck>,
}

impl Case {
    /// A queue observed now with `now_waiting`; `before` is what its row holds and
    /// how old it is (None: no row yet).
    fn queue(mut self, key: &str, now_waiting: u64, before: Option<(u64, i64)>) -> Self {
        self.targets.push(t(key));
        self.observed.push(Observation {
            target: t(key),
            values: waiting(now_waiting),
            at: now(),
        });
        self.held_row(key, before)
    }

    /// A selected queue that could not be observed this cycle.
    fn unobserved(mut self, key: &str, before: Option<(u64, i64)>) -> Self {
        self.targets.push(t(key));
        self.held_row(key, before)
    }

    fn held_row(mut self, key: &str, before: Option<(u64, i64)>) -> Self {
        if let Some((w, age_min)) = before {
            let held = Held {
                values: waiting(w),
                at: now() - mins(age_min),
            };
            self.held.insert(key.into(), held);
            self.keys.insert(key.into());
        }
        self
    }

    /// Other rows in the table (not the daemon's), to fill it up.
    fn foreign_rows(mut self, n: usize) -> Self {
        self.keys.extend((0..n).map(|i| format!("foreign-{i}")));
        self
    }

    fn plan(&self, policy: &Policy) -> Plan {
        let reads = self.targets.len().div_ceil(100);
        let view = TableView {
            held: &self.held,
            keys: &self.keys,
            import_failures: &self.import_failures,
        };
        let names = self.names.unwrap_or(NameCheck::None);
        plan(policy, &self.targets, &self.observed, reads, view, names)
    }
}

fn rows_of(p: &Plan) -> (Vec<&str>, Vec<&str>, Option<&Heartbeat>) {
    match &p.writes {
        Writes::Rows {
            rows,
            deferred,
            heartbeat,
            ..
        } => (
            rows.iter().map(|d| d.target.key.as_str()).collect(),
            deferred.iter().map(|d| d.target.key.as_str()).collect(),
            heartbeat.as_ref(),
        ),
        Writes::Import { .. } => panic!("expected rows, got {p:?}"),
    }
}

/// The keys of an import file, the keys going by rows, the heartbeat.
fn import_of(p: &Plan) -> (Vec<&str>, Vec<&str>, Option<&str>) {
    fn keys(d: &[Due]) -> Vec<&str> {
        d.iter().map(|d| d.target.key.as_str()).collect()
    }
    match &p.writes {
        Writes::Import {
            rows,
            via_rows,
            heartbeat,
        } => (keys(rows), keys(via_rows), heartbeat.as_deref()),
        Writes::Rows { .. } => panic!("expected an import, got {p:?}"),
    }
}

#[test]
fn the_budget_is_a_periods_share_of_the_minute_less_reads_and_heartbeat() {
    let mut p = policy();
    // The heartbeat costs two: its read-back (the writer check) and its write.
    assert_eq!(p.row_budget(1), 300 - 1 - 2);
    p.period = Duration::from_secs(10);
    assert_eq!(p.row_budget(2), 50 - 2 - 2);
    // A period over a minute still spends at most a minute's worth per cycle.
    p.period = Duration::from_secs(300);
    assert_eq!(p.row_budget(1), 297);
    p.heartbeat_key = None;
    assert_eq!(p.row_budget(1), 299);
    // Reads alone over the budget: nothing left, never an underflow.
    p.period = Duration::from_secs(1);
    assert_eq!(p.row_budget(50), 0);
}

#[test]
fn a_period_too_short_for_the_budget_is_named_with_one_that_fits() {
    let mut p = policy();
    p.requests_per_minute = 240;
    p.period = Duration::from_secs(1);
    // 4 requests a cycle: 1 read + 2 for the heartbeat leave 1 write; 8 queues want 1.
    assert_eq!(p.starved_writes(8, 1), None);
    // Rows keyed by name: that write needs its name check too (`demo --every 1`).
    p.name_checks = true;
    assert!(
        p.starved_writes(8, 1)
            .is_some_and(|w| w.contains("at least 2s"))
    );
    p.name_checks = false;
    // 20 queues want 2: starved; 1 + 2 + 2 = 5 requests need 2 s.
    let why = p.starved_writes(20, 1).unwrap_or_default();
    assert!(why.contains("period of 1s leaves 4 requests"), "{why}");
    assert!(why.contains("at least 2s"), "{why}");
    // The demo's default, 5 s: 20 requests a cycle.
    p.period = Duration::from_secs(5);
    assert_eq!(p.starved_writes(20, 1), None);
    // An import needs about 4 requests besides the reads.
    p.write_mode = WriteMode::Import;
    p.period = Duration::from_secs(10);
    assert!(
        p.starved_writes(5000, 50)
            .is_some_and(|w| w.contains("at least 14s"))
    );
    p.period = Duration::from_secs(15);
    assert_eq!(p.starved_writes(5000, 50), None);
}

#[test]
fn only_new_changed_or_refresh_due_rows_are_written() {
    let case = Case::default()
        .queue("new", 1, None)
        .queue("changed", 2, Some((1, 1)))
        .queue("same", 3, Some((3, 1)))
        .queue("stale", 4, Some((4, 5)));
    let p = case.plan(&policy());
    let (rows, deferred, _) = rows_of(&p);
    assert_eq!(rows, ["new", "changed", "stale"]);
    assert!(deferred.is_empty());
    assert_eq!(p.skipped, 1, "the unchanged fresh row is skipped");
}

#[test]
fn an_age_that_only_grew_is_not_due_until_the_refresh() {
    use crate::sync::columns::column;
    let mut p = policy();
    p.columns = Columns::new(vec![
        column("Waiting", "waiting", None, None).unwrap_or_else(|e| panic!("{e:?}")),
        column("Oldest", "longest_waiting_seconds", None, None).unwrap_or_else(|e| panic!("{e:?}")),
    ])
    .unwrap_or_else(|e| panic!("{e:?}"));
    // Each queue: (now, held, held's age in minutes).
    let queues: [(&str, [u64; 2], [u64; 2], i64); 5] = [
        // The same caller, a minute older: the row read as of UpdatedAt is right.
        ("same-caller", [1, 90], [1, 30], 1),
        // The same caller, but the row is due for its refresh anyway.
        ("same-caller-old", [1, 330], [1, 30], 5),
        // The oldest caller was answered, a newer one is the oldest now.
        ("new-oldest", [1, 10], [2, 30], 1),
        // Someone started waiting; the last caller left.
        ("started", [1, 4], [0, 0], 1),
        ("ended", [0, 0], [1, 30], 1),
    ];
    let mut case = Case::default();
    for (key, now_v, held_v, age) in queues {
        case.targets.push(t(key));
        case.observed.push(Observation {
            target: t(key),
            values: Values(now_v.to_vec()),
            at: now(),
        });
        case.held.insert(
            key.into(),
            Held {
                values: Values(held_v.to_vec()),
                at: now() - mins(age),
            },
        );
        case.keys.insert(key.into());
    }
    let plan = case.plan(&p);
    let (rows, deferred, _) = rows_of(&plan);
    assert_eq!(rows, ["started", "new-oldest", "ended", "same-caller-old"]);
    assert!(deferred.is_empty());
    assert_eq!(plan.skipped, 1, "only the aging row is skipped");
    match &plan.writes {
        Writes::Rows { rows, .. } => {
            assert!(!rows[3].changed, "the old row is a refresh, not a change");
        }
        Writes::Import { .. } => unreachable!(),
    }
}

#[test]
fn refresh_happens_at_the_cycle_nearest_to_refresh_after() {
    // refresh_after 5 min at a 60 s period: due from 4 min 30 s, not at 6 min.
    let p = policy();
    assert_eq!(p.refresh_age(), chrono::Duration::seconds(270));
    let mut case = Case::default().queue("q", 3, Some((3, 0)));
    for (age_s, due) in [(269, false), (270, true), (300, true)] {
        case.held.insert(
            "q".into(),
            Held {
                values: waiting(3),
                at: now() - chrono::Duration::seconds(age_s),
            },
        );
        let plan = case.plan(&p);
        let (rows, _, _) = rows_of(&plan);
        assert_eq!(rows.len(), usize::from(due), "age {age_s} s");
        assert_eq!(plan.skipped, usize::from(!due), "age {age_s} s");
    }
    // A period longer than refresh_after: every cycle refreshes.
    let mut p = policy();
    p.period = Duration::from_secs(900);
    assert_eq!(p.refresh_age(), chrono::Duration::zero());
}

#[test]
fn over_budget_the_biggest_change_goes_first_then_the_oldest_and_the_rest_wait() {
    let mut p = policy();
    // 7 requests per cycle at 10 s: 1 read + 2 for the heartbeat leave 4 row writes.
    p.requests_per_minute = 42;
    p.period = Duration::from_secs(10);
    let case = Case::default()
        .queue("refresh-young", 1, Some((1, 5)))
        .queue("small-old", 11, Some((10, 3)))
        .queue("big", 30, Some((10, 1)))
        .queue("refresh-old", 1, Some((1, 9)))
        .queue("new", 1, None)
        .queue("small-young", 11, Some((10, 1)));
    let plan = case.plan(&p);
    let (rows, deferred, _) = rows_of(&plan);
    assert_eq!(rows, ["new", "big", "small-old", "small-young"]);
    assert_eq!(
        deferred,
        ["refresh-old", "refresh-young"],
        "refreshes wait behind changes, the oldest first"
    );
    match &plan.writes {
        Writes::Rows { budget, .. } => assert_eq!(*budget, 4),
        Writes::Import { .. } => unreachable!(),
    }
}

#[test]
fn name_checks_before_writing_are_held_back_from_the_budget() {
    assert_eq!(rows_with_name_checks(0), 0);
    assert_eq!(
        rows_with_name_checks(1),
        0,
        "a row write needs its name check"
    );
    assert_eq!(rows_with_name_checks(2), 1);
    assert_eq!(rows_with_name_checks(101), 100);
    assert_eq!(rows_with_name_checks(102), 100, "101 rows need 2 checks");
    assert_eq!(rows_with_name_checks(103), 101);
    let mut p = policy();
    // 10 requests per cycle: 1 read + 2 for the heartbeat leave 7.
    p.requests_per_minute = 60;
    p.period = Duration::from_secs(10);
    let mut case = Case::default();
    for i in 0..10 {
        case = case.queue(&format!("q{i}"), 1, Some((0, 1)));
    }
    let budget = |case: &Case| match case.plan(&p).writes {
        Writes::Rows { rows, budget, .. } => (rows.len(), budget),
        Writes::Import { .. } => unreachable!(),
    };
    case.names = Some(NameCheck::None);
    assert_eq!(budget(&case), (7, 7));
    // The names of the rows written: one request for up to 100 of them.
    case.names = Some(NameCheck::Written);
    assert_eq!(budget(&case), (6, 6));
    // Every name (every refresh_after): ⌈10/100⌉ = 1 request.
    case.names = Some(NameCheck::All);
    assert_eq!(budget(&case), (6, 6));
}

/// 3 queues that all changed, with a budget of 1 row write per cycle.
fn over_budget_case() -> (Case, Policy) {
    let mut p = policy();
    p.requests_per_minute = 4;
    let case = Case::default()
        .queue("a", 1, Some((0, 1)))
        .queue("b", 1, Some((0, 1)))
        .queue("c", 1, Some((0, 1)));
    (case, p)
}

#[test]
fn rows_mode_defers_and_never_imports() {
    let (case, p) = over_budget_case();
    let plan = case.plan(&p);
    let (rows, deferred, _) = rows_of(&plan);
    assert_eq!((rows.len(), deferred.len()), (1, 2));
}

#[test]
fn an_import_file_holds_only_the_due_rows_and_the_heartbeat() {
    let mut p = policy();
    p.write_mode = WriteMode::Import;
    let case = Case::default()
        .queue("same", 1, Some((1, 0)))
        .queue("changed", 2, Some((1, 1)))
        .queue("new", 1, None)
        .unobserved("unread", Some((7, 30)))
        .foreign_rows(3);
    let plan = case.plan(&p);
    let (rows, via_rows, heartbeat) = import_of(&plan);
    assert_eq!(
        rows,
        ["changed", "new"],
        "Append leaves every other row (unchanged, unread, foreign) as it is"
    );
    assert!(via_rows.is_empty());
    assert_eq!(heartbeat, Some("_heartbeat"));
    assert_eq!(plan.skipped, 1);
}

#[test]
fn auto_mode_imports_over_budget_in_any_table() {
    let (case, mut p) = over_budget_case();
    p.write_mode = WriteMode::Auto;
    let case = case.foreign_rows(10);
    assert_eq!(import_of(&case.plan(&p)).0.len(), 3);
    // Within the budget: rows.
    p.requests_per_minute = 300;
    let plan = case.plan(&p);
    let (rows, deferred, _) = rows_of(&plan);
    assert_eq!((rows.len(), deferred.len()), (3, 0));
}

#[test]
fn rows_imports_keep_rejecting_go_through_the_rows_api() {
    let mut p = policy();
    p.write_mode = WriteMode::Import;
    let mut case = Case::default()
        .queue("once", 2, Some((1, 1)))
        .queue("twice", 2, Some((1, 1)))
        .queue("ok", 2, Some((1, 1)));
    case.import_failures
        .insert("once".into(), IMPORT_FAILURES_BEFORE_ROWS - 1);
    case.import_failures
        .insert("twice".into(), IMPORT_FAILURES_BEFORE_ROWS);
    let plan = case.plan(&p);
    let (rows, via_rows, _) = import_of(&plan);
    assert_eq!(rows, ["once", "ok"]);
    assert_eq!(via_rows, ["twice"]);
}

#[test]
fn the_heartbeat_goes_with_the_rows_put_or_post_and_never_into_a_full_table() {
    let p = policy();
    let case = Case::default().queue("a", 1, Some((1, 0)));
    let plan = case.plan(&p);
    let (_, _, hb) = rows_of(&plan);
    let expected = Heartbeat {
        key: "_heartbeat".into(),
        exists: false,
    };
    assert_eq!(hb, Some(&expected));

    let mut case = Case::default().queue("a", 1, Some((1, 0)));
    case.keys.insert("_heartbeat".into());
    let plan = case.plan(&p);
    let (_, _, hb) = rows_of(&plan);
    assert!(
        hb.is_some_and(|h| h.exists),
        "an existing heartbeat is a PUT"
    );

    // 4,999 rows and one new queue row planned: the table is full after it.
    let case = Case::default()
        .queue("new", 1, None)
        .foreign_rows(MAX_ROWS - 1);
    let plan = case.plan(&p);
    let (rows, _, hb) = rows_of(&plan);
    assert_eq!(rows, ["new"]);
    assert_eq!(hb, None, "a POST into a full table only fails");

    // A full table whose heartbeat row exists: still written (a PUT).
    let mut case = Case::default()
        .queue("a", 1, Some((1, 0)))
        .foreign_rows(MAX_ROWS - 2);
    case.keys.insert("_heartbeat".into());
    let plan = case.plan(&p);
    assert!(rows_of(&plan).2.is_some());

    let mut off = policy();
    off.heartbeat_key = None;
    assert_eq!(rows_of(&case.plan(&off)).2, None);
}

#[test]
fn an_import_of_5000_rows_leaves_the_heartbeat_out() {
    let mut p = policy();
    p.write_mode = WriteMode::Import;
    let mut case = Case::default();
    for i in 0..MAX_ROWS - 1 {
        case = case.queue(&format!("q{i}"), 1, None);
    }
    assert_eq!(import_of(&case.plan(&p)).2, Some("_heartbeat"));
    case = case.queue("last", 1, None);
    let plan = case.plan(&p);
    let (rows, _, heartbeat) = import_of(&plan);
    assert_eq!((rows.len(), heartbeat), (MAX_ROWS, None));
}

#[test]
fn a_queue_whose_key_is_the_heartbeat_key_keeps_its_row_and_no_heartbeat_is_written() {
    let case = Case::default()
        .queue("Sales", 1, None)
        .queue("_Heartbeat", 1, None);
    let plan = case.plan(&policy());
    let (rows, _, heartbeat) = rows_of(&plan);
    assert_eq!(rows.len(), 2, "the queue's row is written");
    assert_eq!(heartbeat, None);
    let mut p = policy();
    p.write_mode = WriteMode::Import;
    let plan = case.plan(&p);
    let (rows, _, heartbeat) = import_of(&plan);
    assert_eq!((rows.len(), heartbeat), (2, None));
    let only_sales = Case::default().queue("Sales", 1, None);
    assert!(rows_of(&only_sales.plan(&policy())).2.is_some());
}
