//! The progress display of `download` and `seed`: on a terminal an indicatif bar (percent,
//! bytes, down and up rates, peers, ETA) and, with `--files`, one bar per selected file; with
//! `--json`, `progress` lines (with a `files` array when `--files` is given). Nothing is drawn
//! when stderr is not a terminal.

use bitshoal_core::metainfo::Info;
use bitshoal_core::picker::Priority;
use bitshoal_core::session::{TorrentState, TorrentStatus};
use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{json, Value};

use super::options::visible_files;
use super::transfer;

/// One file shown with `--files`.
struct FileRow {
    /// Index in `info.files()`.
    index: usize,
    /// Its number as `--only` counts (from 1, pad files left out).
    number: usize,
    path: String,
    length: u64,
    bar: Option<ProgressBar>,
}

/// What a transfer command shows while it runs.
pub(crate) struct Progress {
    json: bool,
    main: ProgressBar,
    multi: Option<MultiProgress>,
    files: Vec<FileRow>,
    /// Bytes of the wanted files, for the main bar's length.
    wanted_bytes: u64,
    /// Whether each file of `info.files()` is wanted (and not a pad file).
    wanted: Vec<bool>,
    last_json: Option<(u32, Vec<u64>)>,
}

impl Progress {
    /// A display for `info` with its file `priorities`; per-file rows if `per_file`.
    pub(crate) fn new(info: &Info, priorities: &[Priority], json: bool, per_file: bool) -> Self {
        let wanted = |i: usize| priorities.get(i).is_none_or(|p| *p != Priority::Skip);
        let wanted_files: Vec<bool> = info
            .files()
            .iter()
            .enumerate()
            .map(|(i, f)| !f.is_pad() && wanted(i))
            .collect();
        let wanted_bytes = info
            .files()
            .iter()
            .zip(&wanted_files)
            .filter(|(_, w)| **w)
            .map(|(f, _)| f.length())
            .sum();
        let multi = (!json).then(MultiProgress::new);
        let main = match &multi {
            Some(m) => m.add(ProgressBar::new(wanted_bytes)),
            None => ProgressBar::with_draw_target(Some(wanted_bytes), ProgressDrawTarget::hidden()),
        };
        main.set_style(
            ProgressStyle::with_template(
                "[{bar:30}] {percent:>3}% {binary_bytes}/{binary_total_bytes} {msg}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        let mut files = Vec::new();
        if per_file {
            for (n, index) in visible_files(info).into_iter().enumerate() {
                if !wanted(index) {
                    continue;
                }
                let file = &info.files()[index];
                let bar = multi.as_ref().map(|m| {
                    let bar = m.add(ProgressBar::new(file.length()));
                    bar.set_style(
                        ProgressStyle::with_template(
                            "  {prefix:>4} [{bar:20}] {percent:>3}% {msg}",
                        )
                        .expect("a valid template")
                        .progress_chars("=> "),
                    );
                    bar.set_prefix(format!("{}", n + 1));
                    bar.set_message(file.path().as_str().to_string());
                    bar
                });
                files.push(FileRow {
                    index,
                    number: n + 1,
                    path: file.path().as_str().to_string(),
                    length: file.length(),
                    bar,
                });
            }
        }
        Self {
            json,
            main,
            multi,
            files,
            wanted_bytes,
            wanted: wanted_files,
            last_json: None,
        }
    }

    /// Prints a line above the bars (text mode).
    pub(crate) fn println(&self, line: &str) {
        match &self.multi {
            Some(m) if !m.is_hidden() => {
                let _ = m.println(line);
            }
            _ => eprintln!("{line}"),
        }
    }

    /// Shows `status`, with per-file bytes from `file_progress` (by index in `info.files()`).
    pub(crate) fn update(&mut self, status: &TorrentStatus, file_progress: &[u64]) {
        let have_wanted: u64 = file_progress
            .iter()
            .zip(&self.wanted)
            .filter(|(_, w)| **w)
            .map(|(have, _)| *have)
            .sum();
        let left = self.wanted_bytes.saturating_sub(have_wanted);
        self.main.set_position(have_wanted.min(self.wanted_bytes));
        let activity = match &status.state {
            TorrentState::Checking { checked, total } => format!("checking {checked}/{total}"),
            state => format!(
                "{state}, ↓ {}/s ↑ {}/s, {} peers, ETA {}",
                HumanBytes(status.download_rate),
                HumanBytes(status.upload_rate),
                status.peers,
                eta(left, status.download_rate),
            ),
        };
        self.main.set_message(activity);
        for row in &self.files {
            if let Some(bar) = &row.bar {
                bar.set_position(file_progress.get(row.index).copied().unwrap_or(0));
            }
        }
        if self.json {
            let files: Vec<u64> = self
                .files
                .iter()
                .map(|r| file_progress.get(r.index).copied().unwrap_or(0))
                .collect();
            let key = (status.pieces_have, files);
            if self.last_json.as_ref() != Some(&key) {
                let mut line = transfer::progress_json(status);
                if !self.files.is_empty() {
                    line["files"] = Value::Array(
                        self.files
                            .iter()
                            .zip(&key.1)
                            .map(|(r, have)| {
                                json!({
                                    "file": r.number,
                                    "path": r.path,
                                    "have": have,
                                    "length": r.length,
                                })
                            })
                            .collect(),
                    );
                }
                transfer::emit(line);
                self.last_json = Some(key);
            }
        }
    }

    /// Leaves the bars as they are with `message`.
    pub(crate) fn finish(&self, message: &str) {
        self.main.finish_with_message(message.to_string());
        for row in &self.files {
            if let Some(bar) = &row.bar {
                bar.finish();
            }
        }
    }

    /// Stops drawing (on an error or an interruption).
    pub(crate) fn abandon(&self) {
        self.main.abandon();
        for row in &self.files {
            if let Some(bar) = &row.bar {
                bar.abandon();
            }
        }
    }
}

/// Time left for `left` bytes at `rate` bytes per second, as `h:mm:ss` (`-` when nothing flows).
fn eta(left: u64, rate: u64) -> String {
    if left == 0 {
        return "0:00:00".to_string();
    }
    if rate == 0 {
        return "-".to_string();
    }
    let secs = left / rate;
    format!("{}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}
