//! The standard `process_*` family (memory, CPU, start time, file descriptors), read
//! from /proc at each scrape.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;

/// The `process_*` metrics every Prometheus client library exports, read from /proc at
/// each scrape (so they cost nothing between scrapes). A value /proc cannot give is left
/// out rather than reported as 0.
#[derive(Debug)]
pub(super) struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Ok(me) = procfs::process::Process::myself() else {
            return Ok(());
        };
        let mut gauge = |name: &str, help: &str, unit: Option<&Unit>, v: f64| {
            let g = ConstGauge::new(v);
            let m = encoder.encode_descriptor(name, help, unit, g.metric_type())?;
            g.encode(m)
        };
        let mut cpu_seconds = None;
        if let Ok(stat) = me.stat() {
            let ticks = procfs::ticks_per_second().max(1) as f64;
            gauge(
                "process_resident_memory",
                "Resident memory size",
                Some(&Unit::Bytes),
                (stat.rss * procfs::page_size()) as f64,
            )?;
            gauge(
                "process_virtual_memory",
                "Virtual memory size",
                Some(&Unit::Bytes),
                stat.vsize as f64,
            )?;
            if let Ok(boot) = procfs::boot_time_secs() {
                gauge(
                    "process_start_time",
                    "Start time of the process since the Unix epoch",
                    Some(&Unit::Seconds),
                    boot as f64 + stat.starttime as f64 / ticks,
                )?;
            }
            cpu_seconds = Some((stat.utime + stat.stime) as f64 / ticks);
        }
        if let Ok(n) = me.fd_count() {
            gauge(
                "process_open_fds",
                "Number of open file descriptors",
                None,
                n as f64,
            )?;
        }
        if let Ok(limits) = me.limits() {
            if let procfs::process::LimitValue::Value(max) = limits.max_open_files.soft_limit {
                gauge(
                    "process_max_fds",
                    "Maximum number of open file descriptors",
                    None,
                    max as f64,
                )?;
            }
        }
        if let Some(secs) = cpu_seconds {
            let cpu = ConstCounter::new(secs);
            let m = encoder.encode_descriptor(
                "process_cpu",
                "Total user and system CPU time spent",
                Some(&Unit::Seconds),
                cpu.metric_type(),
            )?;
            cpu.encode(m)?;
        }
        Ok(())
    }
}
