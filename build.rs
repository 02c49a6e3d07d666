//! Records the git revision and the build date for `--version`, the start-up log line
//! and the `build_info` metric.
//!
//! Both can be given from outside, for builds without a git checkout (a container build
//! context, a source tarball): `GENESYS_QUEUE_SYNC_REVISION` and `SOURCE_DATE_EPOCH`
//! (the reproducible-builds convention, seconds since 1970). Without them the revision
//! comes from `git rev-parse` and the date is today's (UTC). Nothing here can fail the
//! build: an unknown revision is reported as "unknown".

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    println!("cargo:rerun-if-env-changed=GENESYS_QUEUE_SYNC_REVISION");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");

    let revision = std::env::var("GENESYS_QUEUE_SYNC_REVISION")
        .ok()
        .filter(|r| !r.trim().is_empty())
        .or_else(git_revision)
        .unwrap_or_else(|| "unknown".to_owned());
    // Rebuild when HEAD moves (a commit, a checkout), so the revision stays true. Only
    // HEAD and the checked-out branch's ref are watched: other branches moving (in a
    // shared repository with several worktrees) must not rebuild this one.
    // A watched path that does not exist would rerun this script on every build.
    let watch = |p: String| {
        if std::path::Path::new(&p).exists() {
            println!("cargo:rerun-if-changed={p}");
        }
    };
    let mut watched: Vec<String> = ["HEAD", "packed-refs"]
        .iter()
        .filter_map(|p| git(&["rev-parse", "--git-path", p]))
        .collect();
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.extend(git(&["rev-parse", "--git-path", &branch]));
    }
    watched.into_iter().for_each(watch);

    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0)
        });
    let (y, m, d) = civil_from_days(epoch.div_euclid(86_400));

    println!("cargo:rustc-env=GQS_GIT_REVISION={revision}");
    println!("cargo:rustc-env=GQS_BUILD_DATE={y:04}-{m:02}-{d:02}");
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!s.is_empty()).then_some(s)
}

fn git_revision() -> Option<String> {
    git(&["rev-parse", "--short=12", "HEAD"])
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's
/// `civil_from_days`): a build script should not pull in a date crate for one line.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}
