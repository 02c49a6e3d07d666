//! The log lines of the daemon running in this test binary, for tests that look for the
//! warnings they expect and for leaks.

use std::sync::{Arc, Mutex, OnceLock};

/// Every log line of this test binary (all tests share one global subscriber), at trace
/// level for the daemon, so tests can look for the warnings they expect and for leaks.
pub fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let _ = tracing_subscriber::fmt()
            .with_writer(Capture(buf.clone()))
            .with_ansi(false)
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "genesys_queue_sync=trace,genesys_sim=info",
            ))
            .try_init();
        buf
    })
}

#[derive(Clone)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

pub fn log_text() -> String {
    String::from_utf8_lossy(&logs().lock().unwrap()).into_owned()
}

/// Log lines holding every one of `parts`.
pub fn log_lines_with(parts: &[&str]) -> Vec<String> {
    log_text()
        .lines()
        .filter(|l| parts.iter().all(|p| l.contains(p)))
        .map(str::to_owned)
        .collect()
}
