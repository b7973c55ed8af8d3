//! Collecting samples per client and printing them as markdown tables with ratios.

use std::fmt::Write as _;

use crate::proc::Usage;

const MIB: f64 = 1024.0 * 1024.0;
const GIB: f64 = 1024.0 * MIB;

/// One measured transfer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sample {
    /// Payload MiB per second of wall time, spawn to exit.
    pub(crate) rate: f64,
    /// CPU seconds (user + system) of the measured process per GiB moved.
    pub(crate) cpu_per_gib: f64,
    /// Peak RSS, MiB.
    pub(crate) rss: f64,
    /// Peak anonymous memory, MiB.
    pub(crate) anon: f64,
    /// CPU seconds per GiB of the other side (the seeder for downloads).
    pub(crate) other_cpu_per_gib: f64,
}

impl Sample {
    /// A sample from the measured process's usage, the bytes moved and the other side's CPU.
    pub(crate) fn new(usage: &Usage, bytes: u64, other_cpu: f64) -> Self {
        let gib = bytes as f64 / GIB;
        Self {
            rate: bytes as f64 / MIB / usage.wall.as_secs_f64(),
            cpu_per_gib: usage.cpu.as_secs_f64() / gib,
            rss: usage.max_rss as f64 / MIB,
            anon: usage.max_anon as f64 / MIB,
            other_cpu_per_gib: other_cpu / gib,
        }
    }
}

/// The samples of one client in one scenario.
#[derive(Debug)]
pub(crate) struct Row {
    /// The client's label.
    pub(crate) client: String,
    /// Whether it is bitshoal (ratios compare bitshoal rows against the others).
    pub(crate) ours: bool,
    /// Whether its memory figure is anonymous memory rather than RSS (libtorrent maps its
    /// download, so its RSS counts the file's pages).
    pub(crate) anon_memory: bool,
    /// The samples, one per round.
    pub(crate) samples: Vec<Sample>,
    /// Failures, one line each.
    pub(crate) failures: Vec<String>,
}

impl Row {
    /// An empty row.
    pub(crate) fn new(client: &str, ours: bool, anon_memory: bool) -> Self {
        Self {
            client: client.to_string(),
            ours,
            anon_memory,
            samples: Vec::new(),
            failures: Vec::new(),
        }
    }

    fn stat(&self, f: impl Fn(&Sample) -> f64) -> Option<Stat> {
        Stat::of(self.samples.iter().map(f).collect())
    }

    /// The memory figure the targets compare: anonymous memory for libtorrent, RSS otherwise.
    fn memory(&self) -> Option<Stat> {
        if self.anon_memory {
            self.stat(|s| s.anon)
        } else {
            self.stat(|s| s.rss)
        }
    }
}

/// Median, minimum and maximum of a set of values.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stat {
    pub(crate) median: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
}

impl Stat {
    /// The statistics of `values`, ignoring NaN (not measured); `None` if none is left.
    pub(crate) fn of(mut values: Vec<f64>) -> Option<Self> {
        values.retain(|v| !v.is_nan());
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let median = if n % 2 == 1 {
            values[n / 2]
        } else {
            (values[n / 2 - 1] + values[n / 2]) / 2.0
        };
        Some(Self {
            median,
            min: values[0],
            max: values[n - 1],
        })
    }

    fn show(&self, decimals: usize) -> String {
        format!(
            "{:.d$} ({:.d$}–{:.d$})",
            self.median,
            self.min,
            self.max,
            d = decimals
        )
    }
}

fn show(stat: Option<Stat>, decimals: usize) -> String {
    stat.map_or_else(|| "—".to_string(), |s| s.show(decimals))
}

/// A markdown table of `rows` under `title`; `other` names the other side's CPU column.
pub(crate) fn table(title: &str, other: &str, rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### {title}\n");
    let _ = writeln!(
        out,
        "| client | MiB/s | CPU s/GiB | peak RSS MiB | peak anon MiB | {other} CPU s/GiB | rounds |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    for row in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {}{} |",
            row.client,
            show(row.stat(|s| s.rate), 0),
            show(row.stat(|s| s.cpu_per_gib), 2),
            show(row.stat(|s| s.rss), 1),
            show(row.stat(|s| s.anon), 1),
            show(row.stat(|s| s.other_cpu_per_gib), 2),
            row.samples.len(),
            if row.failures.is_empty() {
                String::new()
            } else {
                format!(" ({} failed)", row.failures.len())
            },
        );
    }
    out.push('\n');
    for row in rows {
        for failure in &row.failures {
            let _ = writeln!(out, "- {} failed: {failure}", row.client);
        }
    }
    out
}

/// Lines comparing each bitshoal row with the best other client (medians): download rate
/// against the fastest, CPU against the most frugal, memory against the smallest (anonymous
/// memory for libtorrent), with the targets of issue #10.
pub(crate) fn ratios(rows: &[Row]) -> String {
    let others: Vec<&Row> = rows
        .iter()
        .filter(|r| !r.ours && !r.samples.is_empty())
        .collect();
    let best = |key: &dyn Fn(&Row) -> Option<f64>, higher: bool| {
        others
            .iter()
            .filter_map(|r| key(r).map(|v| (v, r.client.as_str())))
            .reduce(|a, b| if (b.0 > a.0) == higher { b } else { a })
    };
    let rate = |r: &Row| r.stat(|s| s.rate).map(|s| s.median);
    let cpu = |r: &Row| r.stat(|s| s.cpu_per_gib).map(|s| s.median);
    let mem = |r: &Row| r.memory().map(|s| s.median);
    let (Some(best_rate), Some(best_cpu), Some(best_mem)) =
        (best(&rate, true), best(&cpu, false), best(&mem, false))
    else {
        return "No other client finished, so no ratios.\n".to_string();
    };
    let mut out = String::new();
    for row in rows.iter().filter(|r| r.ours && !r.samples.is_empty()) {
        let (Some(r), Some(c), Some(m)) = (rate(row), cpu(row), mem(row)) else {
            continue;
        };
        let mark = |ok: bool| if ok { "met" } else { "missed" };
        let _ = writeln!(
            out,
            "- {}: {:.2}× the rate of {} (target ≥ 1.30: {}), {:.2}× the CPU of {} (target ≤ 0.65: {}), {:.2}× the memory of {} (target ≤ 0.50: {})",
            row.client,
            r / best_rate.0,
            best_rate.1,
            mark(r / best_rate.0 >= 1.3),
            c / best_cpu.0,
            best_cpu.1,
            mark(c / best_cpu.0 <= 0.65),
            m / best_mem.0,
            best_mem.1,
            mark(m / best_mem.0 <= 0.5),
        );
    }
    out
}
