//! Push mode: rows follow their queue within seconds, over the Notifications API.
//!
//! - [`session`] keeps the channels subscribed and their sockets open and hands the
//!   events over, coalesced per queue and media group while the daemon is busy
//!   ([`coalesce`]); [`channels`] decides which queue goes on which channel.
//! - [`live`] keeps each queue's raw observation (the last poll's, changed by events)
//!   and gives the row values.
//! - [`scheduler`] decides which changed rows to write now (coalescing, priority,
//!   the shared request budget).
//! - The cron schedule keeps running as the reconciliation poll: it corrects what an
//!   event missed or cannot carry, and it is what writes while push is down.

pub mod channels;
pub mod coalesce;
pub mod driver;
pub mod live;
pub mod metrics;
pub mod scheduler;
pub mod session;
