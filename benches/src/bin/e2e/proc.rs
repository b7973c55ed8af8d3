//! Child processes: started, measured (wall time, CPU, memory) and always cleaned up.
//!
//! A measured child is reaped with `wait4(2)`, which returns the child's own resource usage
//! (user and system CPU of all its threads, peak RSS), so nothing else the benchmark runs is
//! counted. A thread samples `/proc/<pid>/status` meanwhile for the peak of anonymous memory
//! (`RssAnon`): libtorrent's RSS also counts the pages of the file it maps, which are the
//! download itself, not memory the client uses.

use std::fs;
use std::io::{self, BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// What one finished child used.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Usage {
    /// Wall time from spawn to exit.
    pub(crate) wall: Duration,
    /// User plus system CPU time of the child.
    pub(crate) cpu: Duration,
    /// Peak resident set size (`ru_maxrss`), bytes.
    pub(crate) max_rss: u64,
    /// Peak anonymous resident memory seen by sampling, bytes.
    pub(crate) max_anon: u64,
}

/// A child process that is killed (by its pid) and reaped when dropped, unless reaped already.
pub(crate) struct Proc {
    child: Child,
    name: String,
    reaped: bool,
    started: Instant,
    stdout: Option<BufReader<ChildStdout>>,
    anon: Arc<AtomicU64>,
    stop_sampling: Arc<AtomicBool>,
    sampler: Option<thread::JoinHandle<()>>,
}

impl Proc {
    /// Starts `command` with stdout piped (read with [`Proc::wait_line`]) and stdin closed,
    /// and starts sampling its memory.
    pub(crate) fn start(name: &str, mut command: Command) -> io::Result<Self> {
        command.stdin(Stdio::null()).stdout(Stdio::piped());
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            command.pre_exec(|| {
                // The child dies with the benchmark, even if the benchmark is killed.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let started = Instant::now();
        let mut child = command
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("starting {name}: {e}")))?;
        let stdout = child.stdout.take().map(BufReader::new);
        let anon = Arc::new(AtomicU64::new(0));
        let stop_sampling = Arc::new(AtomicBool::new(false));
        let sampler = {
            let (pid, anon, stop) = (child.id(), Arc::clone(&anon), Arc::clone(&stop_sampling));
            thread::spawn(move || sample_anon(pid, &anon, &stop))
        };
        Ok(Self {
            child,
            name: name.to_string(),
            reaped: false,
            started,
            stdout,
            anon,
            stop_sampling,
            sampler: Some(sampler),
        })
    }

    /// Reads stdout lines until one starts with `prefix`; returns it. Fails at end of output.
    pub(crate) fn wait_line(&mut self, prefix: &str) -> io::Result<String> {
        let name = self.name.clone();
        let out = self
            .stdout
            .as_mut()
            .ok_or_else(|| io::Error::other(format!("{name}: no stdout")))?;
        let mut line = String::new();
        loop {
            line.clear();
            if out.read_line(&mut line)? == 0 {
                return Err(io::Error::other(format!(
                    "{name} ended before printing {prefix:?}"
                )));
            }
            if line.starts_with(prefix) {
                return Ok(line.trim_end().to_string());
            }
        }
    }

    /// Waits for the child to exit and returns what it used; fails if it exited unsuccessfully.
    pub(crate) fn wait(mut self) -> io::Result<Usage> {
        let pid = self.child.id() as libc::pid_t;
        let mut status: libc::c_int = 0;
        // SAFETY: `rusage` is plain old data; all-zero is a valid value.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        loop {
            // SAFETY: valid pointers to locals; `pid` is our own unreaped child.
            let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
            if r == pid {
                break;
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
        self.reaped = true;
        let wall = self.started.elapsed();
        self.stop_sampler();
        let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
        let usage = Usage {
            wall,
            cpu: tv(ru.ru_utime) + tv(ru.ru_stime),
            max_rss: ru.ru_maxrss as u64 * 1024,
            max_anon: self.anon.load(Ordering::Relaxed),
        };
        let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
        if !ok {
            return Err(io::Error::other(format!(
                "{} failed (wait status {status:#x})",
                self.name
            )));
        }
        Ok(usage)
    }

    /// CPU time (user + system) the running child has used so far, from `/proc/<pid>/stat`
    /// (clock-tick resolution).
    pub(crate) fn cpu_so_far(&self) -> Duration {
        cpu_of(self.child.id()).unwrap_or_default()
    }

    /// The running child's peak RSS (`VmHWM`) and the peak of its anonymous memory seen so far.
    pub(crate) fn memory_so_far(&self) -> (u64, u64) {
        let hwm = status_field(self.child.id(), "VmHWM:").unwrap_or(0);
        (hwm, self.anon.load(Ordering::Relaxed))
    }

    fn stop_sampler(&mut self) {
        self.stop_sampling.store(true, Ordering::Relaxed);
        if let Some(t) = self.sampler.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if !self.reaped {
            // Our own child, not yet reaped: its pid cannot have been reused.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        self.stop_sampler();
    }
}

/// Keeps the largest `RssAnon` of `pid` in `peak` until `stop`.
fn sample_anon(pid: u32, peak: &AtomicU64, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        if let Some(anon) = status_field(pid, "RssAnon:") {
            peak.fetch_max(anon, Ordering::Relaxed);
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// A `kB` field of `/proc/<pid>/status`, in bytes.
fn status_field(pid: u32, field: &str) -> Option<u64> {
    bitshoal_benches::proc_status_field(&pid.to_string(), field)
}

/// User plus system CPU of a running process, from `/proc/<pid>/stat`.
fn cpu_of(pid: u32) -> Option<Duration> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at field 3 (state);
    // utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(Duration::from_micros((utime + stime) * 1_000_000 / ticks))
}
