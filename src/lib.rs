//! genesys-queue-sync: the single writer of a Genesys Cloud data table that caches
//! per-queue agent counts, so Architect flows read a table instead of calling the API
//! on every interaction.

pub mod cli;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod genesys;
pub mod health;
pub mod loopback;
pub mod metrics;
pub mod push;
pub mod redact;
pub mod reload;
pub mod schedule;
pub mod staleness;
pub mod sync;
pub mod telemetry;
pub mod text;
pub mod version;
