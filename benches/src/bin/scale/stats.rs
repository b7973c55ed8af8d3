//! Small measuring helpers: memory of a process from `/proc`, medians.

use std::fs;
use std::time::Duration;

use crate::alloc;

/// A process's memory at one moment.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Mem {
    /// Heap bytes live (this process only, from the counting allocator; 0 for another process).
    pub(crate) heap: usize,
    /// Heap blocks live (as `heap`).
    pub(crate) blocks: usize,
    /// Resident set size (`VmRSS`), bytes.
    pub(crate) rss: u64,
    /// Anonymous resident memory (`RssAnon`), bytes.
    pub(crate) anon: u64,
}

impl Mem {
    /// This process, now.
    pub(crate) fn now() -> Self {
        Self {
            heap: alloc::live_bytes(),
            blocks: alloc::live_blocks(),
            rss: status_field("self", "VmRSS:").unwrap_or(0),
            anon: status_field("self", "RssAnon:").unwrap_or(0),
        }
    }

    /// Process `pid`, now.
    pub(crate) fn of(pid: u32) -> Self {
        let pid = pid.to_string();
        Self {
            heap: 0,
            blocks: 0,
            rss: status_field(&pid, "VmRSS:").unwrap_or(0),
            anon: status_field(&pid, "RssAnon:").unwrap_or(0),
        }
    }
}

pub(crate) use bitshoal_benches::proc_status_field as status_field;

/// The median of `times` (sorts them).
pub(crate) fn median(times: &mut [Duration]) -> Duration {
    times.sort_unstable();
    times.get(times.len() / 2).copied().unwrap_or_default()
}

/// The `p`-th percentile of sorted `times`.
pub(crate) fn percentile(times: &[Duration], p: usize) -> Duration {
    if times.is_empty() {
        return Duration::ZERO;
    }
    let i = (times.len() * p / 100).min(times.len() - 1);
    times[i]
}

/// The one-, five- and fifteen-minute load averages, as `/proc/loadavg` gives them.
pub(crate) fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}
