//! The logging capability: a guest's log output (the `sluice:handler/log`
//! import, stdout and stderr) as records in the host's structured log,
//! tagged with the function name and event id.
//!
//! A noisy handler cannot flood the log: each invocation may write at most
//! [`MAX_RECORDS_PER_INVOCATION`] records, and each function at most
//! [`RECORDS_PER_SECOND`] per second (a token bucket from `governor`, with
//! a burst of twice that). Records over either budget are counted and
//! dropped, and the drop is reported once per invocation.

use std::collections::VecDeque;
use std::io;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

use crate::runtime::bindings::sluice::handler::log as wit;
use crate::runtime::bindings::Level;

/// A store whose guests may log: it names the log of its instance.
pub trait LogView: Send {
    /// The instance's log.
    fn guest_log(&self) -> &GuestLog;
}

/// The `log` import's host side, borrowed from the store for one call.
pub struct LogHost<'a>(&'a GuestLog);

impl wit::Host for LogHost<'_> {
    fn log(&mut self, level: Level, message: String) {
        self.0.record(level, &message);
    }
}

struct HasLog;

impl wasmtime::component::HasData for HasLog {
    type Data<'a> = LogHost<'a>;
}

/// Link the `sluice:handler/log` import.
///
/// # Errors
/// When the linker already defines it.
pub fn add_to_linker<T: LogView + 'static>(
    linker: &mut wasmtime::component::Linker<T>,
) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, HasLog>(linker, |s| LogHost(s.guest_log()))
}

/// Most records one invocation may write; the rest are counted and dropped.
pub const MAX_RECORDS_PER_INVOCATION: u32 = 100;
/// Lines of stderr kept to explain a trap: six, so that the message of a
/// JavaScript exception survives the three lines StarlingMonkey writes after
/// it.
const STDERR_TAIL_LINES: usize = 6;
/// Longest line kept from stdout/stderr; longer lines are cut.
const MAX_LINE: usize = 4096;

/// Records one function may write per second, across its invocations.
pub const RECORDS_PER_SECOND: u32 = 200;

/// A function's log budget, shared by all its instances.
pub type FunctionBudget = governor::DefaultDirectRateLimiter;

/// A per-function budget of [`RECORDS_PER_SECOND`].
pub fn function_budget() -> Arc<FunctionBudget> {
    let rate = NonZeroU32::new(RECORDS_PER_SECOND).expect("non-zero");
    let burst = NonZeroU32::new(RECORDS_PER_SECOND * 2).expect("non-zero");
    Arc::new(governor::RateLimiter::direct(
        governor::Quota::per_second(rate).allow_burst(burst),
    ))
}

/// The log of one instance; [`GuestLog::begin`] starts each invocation.
#[derive(Debug)]
pub struct GuestLog {
    function: Arc<str>,
    event_id: Mutex<String>,
    budget: Arc<FunctionBudget>,
    written: AtomicU32,
    dropped: AtomicU32,
    stderr_tail: Mutex<VecDeque<String>>,
}

impl GuestLog {
    /// The log of an instance of `function`, drawing on `budget`.
    pub fn new(function: Arc<str>, budget: Arc<FunctionBudget>) -> Arc<Self> {
        Arc::new(Self {
            function,
            event_id: Mutex::new(String::new()),
            budget,
            written: AtomicU32::new(0),
            dropped: AtomicU32::new(0),
            stderr_tail: Mutex::new(VecDeque::new()),
        })
    }

    /// Start logging for the invocation handling `event_id`.
    pub fn begin(&self, event_id: &str) {
        let mut id = self.event_id.lock().unwrap_or_else(|p| p.into_inner());
        id.clear();
        id.push_str(event_id);
        self.written.store(0, Ordering::Relaxed);
        self.dropped.store(0, Ordering::Relaxed);
        self.stderr_tail
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// Write one record, unless the invocation's or the function's budget
    /// is spent.
    pub fn record(&self, level: Level, message: &str) {
        let over_invocation =
            self.written.fetch_add(1, Ordering::Relaxed) >= MAX_RECORDS_PER_INVOCATION;
        if over_invocation || self.budget.check().is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let event_id = self
            .event_id
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let (function, event_id) = (&*self.function, event_id.as_str());
        match level {
            Level::Trace => {
                tracing::trace!(target: "sluice::guest", function, event_id, "{message}")
            }
            Level::Debug => {
                tracing::debug!(target: "sluice::guest", function, event_id, "{message}")
            }
            Level::Info => tracing::info!(target: "sluice::guest", function, event_id, "{message}"),
            Level::Warn => tracing::warn!(target: "sluice::guest", function, event_id, "{message}"),
            Level::Error => {
                tracing::error!(target: "sluice::guest", function, event_id, "{message}")
            }
        }
    }

    /// How many records were dropped over the budget.
    pub fn dropped(&self) -> u32 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The last few lines the guest wrote to stderr (often a panic
    /// message), joined with ` | `.
    pub fn stderr_tail(&self) -> String {
        let tail = self.stderr_tail.lock().unwrap_or_else(|p| p.into_inner());
        tail.iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(" | ")
    }

    fn line(&self, stderr: bool, line: &str) {
        if stderr {
            let mut tail = self.stderr_tail.lock().unwrap_or_else(|p| p.into_inner());
            if tail.len() == STDERR_TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line.to_owned());
            drop(tail);
            self.record(Level::Warn, line);
        } else {
            self.record(Level::Info, line);
        }
    }

    /// A WASI stdout that logs each line at info level.
    pub fn stdout(self: &Arc<Self>) -> LogStream {
        LogStream {
            log: self.clone(),
            stderr: false,
        }
    }

    /// A WASI stderr that logs each line at warn level.
    pub fn stderr(self: &Arc<Self>) -> LogStream {
        LogStream {
            log: self.clone(),
            stderr: true,
        }
    }
}

/// A guest output stream feeding a [`GuestLog`].
pub struct LogStream {
    log: Arc<GuestLog>,
    stderr: bool,
}

impl IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStream {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(LineWriter {
            log: self.log.clone(),
            stderr: self.stderr,
            line: Vec::new(),
        })
    }
}

/// Splits written bytes into lines and logs each one.
struct LineWriter {
    log: Arc<GuestLog>,
    stderr: bool,
    line: Vec<u8>,
}

impl LineWriter {
    fn emit(&mut self) {
        if !self.line.is_empty() {
            let text = String::from_utf8_lossy(&self.line);
            self.log.line(self.stderr, text.trim_end_matches('\r'));
            self.line.clear();
        }
    }
}

impl AsyncWrite for LineWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        for &b in buf {
            if b == b'\n' {
                self.emit();
            } else if self.line.len() < MAX_LINE {
                self.line.push(b);
            }
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.emit();
        Poll::Ready(Ok(()))
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        self.emit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_over_the_invocation_budget_are_dropped_and_counted() {
        let log = GuestLog::new(Arc::from("f"), function_budget());
        log.begin("e1");
        for i in 0..MAX_RECORDS_PER_INVOCATION + 5 {
            log.record(Level::Info, &format!("line {i}"));
        }
        assert_eq!(log.dropped(), 5);
        // The next invocation starts with a fresh count.
        log.begin("e2");
        log.record(Level::Info, "again");
        assert_eq!(log.dropped(), 0);
    }

    #[test]
    fn the_stderr_tail_keeps_the_last_lines_for_a_trap_message() {
        let log = GuestLog::new(Arc::from("f"), function_budget());
        log.begin("e");
        for line in ["a", "b", "c", "d", "e", "f", "panicked at x"] {
            log.line(true, line);
        }
        assert_eq!(log.stderr_tail(), "b | c | d | e | f | panicked at x");
        log.begin("next");
        assert_eq!(log.stderr_tail(), "");
    }
}
