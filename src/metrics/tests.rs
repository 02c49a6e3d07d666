use super::*;

/// The value of the one sample of `name` (no labels, or the labels given).
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (n, v) = l.rsplit_once(' ')?;
        (n == name || n.starts_with(&format!("{name}{{"))).then(|| v.parse().ok())?
    })
}

#[test]
fn build_info_names_version_and_revision() {
    let text = Metrics::new().encode();
    let line = text
        .lines()
        .find(|l| l.starts_with("genesys_queue_sync_build_info{"))
        .unwrap();
    assert!(
        line.contains(&format!("version=\"{}\"", crate::version::VERSION)),
        "{line}"
    );
    assert!(
        line.contains(&format!("revision=\"{}\"", crate::version::REVISION)),
        "{line}"
    );
    assert!(line.ends_with(" 1"), "{line}");
}

#[test]
fn process_metrics_describe_this_process() {
    let text = Metrics::new().encode();
    let rss = sample(&text, "process_resident_memory_bytes").unwrap();
    assert!(
        rss > 1_000_000.0,
        "a running test binary has over 1 MB resident: {rss}"
    );
    let start = sample(&text, "process_start_time_seconds").unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        start <= now + 1.0 && start > now - 86_400.0,
        "{start} vs {now}"
    );
    assert!(sample(&text, "process_open_fds").unwrap() >= 3.0);
    assert!(sample(&text, "process_cpu_seconds_total").unwrap() >= 0.0);
    assert!(
        text.contains("# TYPE process_cpu_seconds counter"),
        "{text}"
    );
}

#[test]
fn api_latency_is_a_histogram_per_endpoint() {
    let m = Metrics::new();
    m.api_latency("observations", Duration::from_millis(40));
    m.api_latency("observations", Duration::from_millis(700));
    m.api_latency("rows_put", Duration::from_millis(10));
    let text = m.encode();
    let count = |ep: &str| {
        sample(
            &text,
            &format!("genesys_queue_sync_api_request_duration_seconds_count{{endpoint=\"{ep}\"}}"),
        )
    };
    assert_eq!(count("observations"), Some(2.0));
    assert_eq!(count("rows_put"), Some(1.0));
    assert!(text.contains(
        "genesys_queue_sync_api_request_duration_seconds_bucket{le=\"0.05\",endpoint=\"observations\"} 1"
    ), "{text}");
}

#[test]
fn per_queue_gauges_are_rendered_at_scrape_time_by_meaning() {
    let m = Metrics::new();
    let text = m.encode();
    assert!(
        !text.contains("queue_agents"),
        "no series, no family: {text}"
    );
    let cols = |v: [i64; 3]| {
        [
            ("agents", "Online", v[0]),
            ("interactions", "Waiting", v[1]),
            ("seconds", "Oldest", v[2]),
        ]
    };
    m.queues.set("Sales", cols([3, 1, 40]));
    m.queues.set("Support", cols([0, 0, 0]));
    m.queues.set("Sales", cols([4, 2, 41]));
    let text = m.encode();
    for line in [
        "# TYPE genesys_queue_sync_queue_agents gauge",
        "genesys_queue_sync_queue_agents{queue=\"Sales\",column=\"Online\"} 4",
        "genesys_queue_sync_queue_agents{queue=\"Support\",column=\"Online\"} 0",
        "# TYPE genesys_queue_sync_queue_interactions gauge",
        "genesys_queue_sync_queue_interactions{queue=\"Sales\",column=\"Waiting\"} 2",
        "# TYPE genesys_queue_sync_queue_seconds gauge",
        "# UNIT genesys_queue_sync_queue_seconds seconds",
        "genesys_queue_sync_queue_seconds{queue=\"Sales\",column=\"Oldest\"} 41",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in {text}");
    }
    assert_eq!(m.queues.series(), 6);
    // Columns changed for one queue: its old columns' series go.
    m.queues.set("Sales", [("agents", "Idle", 1)]);
    let text = m.encode();
    assert!(
        text.contains("{queue=\"Sales\",column=\"Idle\"} 1"),
        "{text}"
    );
    assert!(
        !text.contains("{queue=\"Sales\",column=\"Online\"}"),
        "{text}"
    );
    let keep: std::collections::BTreeSet<&str> = ["Support"].into();
    m.queues.retain(&keep);
    let text = m.encode();
    assert!(!text.contains("queue=\"Sales\""), "{text}");
    assert_eq!(m.queues.series(), 3);
    m.queues.clear();
    assert!(!m.encode().contains("genesys_queue_sync_queue_"));
}

#[test]
fn ready_gauge_follows_set_ready() {
    let m = Metrics::new();
    assert_eq!(sample(&m.encode(), "genesys_queue_sync_ready"), Some(0.0));
    m.set_ready(true);
    assert_eq!(sample(&m.encode(), "genesys_queue_sync_ready"), Some(1.0));
}
