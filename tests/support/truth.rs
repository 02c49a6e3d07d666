//! What each documented column must hold, from the simulator's truth (its state, not its
//! answers). The tests compare the daemon's rows with it; the scale benchmark seeds its
//! tables with it (benches/common includes this file by `#[path]`).

use chrono::{DateTime, Utc};
use genesys_sim::{QueueTruth, SystemPresence};

/// The true value of `column` (one of the 13 of `examples/columns.toml`) at `now`.
pub fn expected(t: &QueueTruth, column: &str, now: DateTime<Utc>) -> u64 {
    match column {
        "Online" => t.online,
        "OnQueue" => t.on_queue,
        "Idle" => t.idle,
        "Interacting" => t.interacting,
        "Waiting" => t.waiting,
        "WaitingVoice" => t.waiting_in(&["voice"]),
        "WaitingDigital" => t.waiting_in(&["message", "email", "chat"]),
        "Members" => t.members,
        "OffQueue" => t.off_queue,
        "OnBreak" => t.in_presence(SystemPresence::Break),
        "NotResponding" => t.not_responding,
        "Alerting" => t.alerting,
        "LongestWaitingSeconds" => t.longest_waiting_seconds(now, None),
        other => panic!("no truth for column {other}"),
    }
}
