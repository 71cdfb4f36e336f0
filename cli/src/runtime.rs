//! The tokio host for the core's [`Runtime`] trait, and the deferral of termination signals
//! while the token store is being changed.
//!
//! A rotated refresh token exists only in memory between Blackbaud's answer and the fsync of the
//! token file. SIGINT, SIGTERM and SIGHUP that arrive while a process holds the token store's
//! lock (a token call and its save) are therefore held back: the save finishes, the lock is
//! released, and only then does the process exit with the signal's status (128 + its number),
//! as a shell reports a process the signal killed. Outside that window a signal ends the process
//! at once, as before. SIGKILL cannot be deferred; the recorded rotation intent covers it.
//!
//! A sync run opens a [`GracefulStop`]: the first signal then asks it to stop ([`stop_signal`])
//! instead of ending the process; the run sends no new request, commits the pages already on
//! their way, reports exactly what it committed and exits with the signal's status. A second
//! signal ends the process as above.

use std::sync::Mutex;
use std::time::Duration;

use skysync_core::host::{BoxFuture, Runtime};

/// Spawns onto the current tokio runtime and sleeps with tokio's timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioRuntime;

impl Runtime for TokioRuntime {
    fn spawn(&self, task: BoxFuture<'static, ()>) {
        tokio::spawn(task);
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// How many critical sections are open, and the first deferred signal. One mutex, so a signal
/// cannot slip between "nothing is open" and a section opening.
static SIGNALS: Mutex<Deferred> =
    Mutex::new(Deferred { open: 0, pending: None, installed: false, graceful: 0, stop: None });

struct Deferred {
    open: usize,
    pending: Option<(i32, &'static str)>,
    installed: bool,
    /// How many [`GracefulStop`]s are open.
    graceful: usize,
    /// The signal that asked them to stop.
    stop: Option<(i32, &'static str)>,
}

fn state() -> std::sync::MutexGuard<'static, Deferred> {
    SIGNALS.lock().unwrap_or_else(|p| p.into_inner())
}

fn exit_for(signal: i32, name: &str, deferred: bool) -> ! {
    if deferred {
        eprintln!("skysync: stopped by {name}, deferred until the token call and its save were done");
    }
    std::process::exit(128 + signal)
}

/// While alive, SIGINT, SIGTERM and SIGHUP wait (see the module docs). The token store opens one
/// for as long as its lock is held.
#[derive(Debug)]
pub struct CriticalSection(());

impl CriticalSection {
    /// Opens a section.
    pub fn enter() -> Self {
        state().open += 1;
        Self(())
    }
}

impl Drop for CriticalSection {
    fn drop(&mut self) {
        let mut s = state();
        s.open -= 1;
        if s.open == 0
            && let Some((signal, name)) = s.pending
        {
            // Exit while holding the state, so no new section opens behind us.
            exit_for(signal, name, true);
        }
    }
}

/// While alive, the first SIGINT, SIGTERM or SIGHUP asks the work to stop (see the module docs)
/// instead of ending the process: a sync run opens one.
#[derive(Debug)]
pub struct GracefulStop(());

impl GracefulStop {
    /// Opens one.
    pub fn enter() -> Self {
        state().graceful += 1;
        Self(())
    }
}

impl Drop for GracefulStop {
    fn drop(&mut self) {
        state().graceful -= 1;
    }
}

/// The signal (its number and name) that asked a [`GracefulStop`] to stop, if one did.
pub fn stop_signal() -> Option<(i32, &'static str)> {
    state().stop
}

/// Takes over SIGINT, SIGTERM and SIGHUP for this process (call inside the tokio runtime, once;
/// later calls do nothing). Commands that touch the token store call it first.
pub fn defer_termination_signals() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut s = state();
        if s.installed {
            return;
        }
        let (Ok(mut int), Ok(mut term), Ok(mut hup)) =
            (signal(SignalKind::interrupt()), signal(SignalKind::terminate()), signal(SignalKind::hangup()))
        else {
            return;
        };
        s.installed = true;
        tokio::spawn(async move {
            loop {
                let got = tokio::select! {
                    _ = int.recv() => (2, "SIGINT"),
                    _ = term.recv() => (15, "SIGTERM"),
                    _ = hup.recv() => (1, "SIGHUP"),
                };
                let mut s = state();
                if s.graceful > 0 && s.stop.is_none() {
                    s.stop = Some(got);
                    eprintln!(
                        "skysync: {} received; stopping once the pages on their way are committed (again to stop at once)",
                        got.1
                    );
                    continue;
                }
                if s.open == 0 {
                    exit_for(got.0, got.1, false);
                }
                if s.pending.is_none() {
                    s.pending = Some(got);
                    eprintln!("skysync: {} received; finishing the token update before stopping", got.1);
                }
            }
        });
    }
}
