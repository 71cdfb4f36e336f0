//! A value that only tokio's blocking pool touches, one call at a time, in the order the calls
//! were made: the SQLite connection.
//!
//! A call handed to the blocking pool runs to its end even when the future awaiting it is
//! dropped (a run stopped mid-commit). So each call takes the value's lock *before* it is handed
//! over, and the lock goes with it: a later call waits for every earlier one, finished or
//! abandoned, and sees what it committed. Dropping the handle waits for abandoned calls too, so
//! once a sink is gone, none of its transactions is still pending.

use std::sync::{Arc, Condvar, Mutex as StdMutex};

use tokio::sync::Mutex;

use super::SinkError;

/// The value behind its lock, and how many calls are still out on the blocking pool.
pub(crate) struct Blocking<T> {
    value: Arc<Mutex<T>>,
    out: Arc<(StdMutex<usize>, Condvar)>,
}

impl<T: Send + 'static> Blocking<T> {
    pub(crate) fn new(value: T) -> Self {
        Self { value: Arc::new(Mutex::new(value)), out: Arc::default() }
    }

    /// Runs `f` on the blocking pool, after every call made before it.
    pub(crate) async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut T) -> Result<R, SinkError> + Send + 'static,
    ) -> Result<R, SinkError> {
        let mut value = Arc::clone(&self.value).lock_owned().await;
        let out = Out::count(&self.out);
        tokio::task::spawn_blocking(move || {
            let _out = out;
            // A panic in an earlier call released the lock; the connection itself is still sound
            // (a failed transaction was rolled back when it was dropped).
            f(&mut value)
        })
        .await
        .map_err(|e| SinkError::Worker(e.to_string()))?
    }
}

impl<T> Drop for Blocking<T> {
    /// Waits for calls whose futures were dropped: each is one transaction, committed or rolled
    /// back when it ends.
    fn drop(&mut self) {
        let (count, done) = &*self.out;
        let mut out = count.lock().unwrap_or_else(|p| p.into_inner());
        while *out > 0 {
            out = done.wait(out).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// One call out on the blocking pool; its end (or its closure dropped unrun) counts it back.
struct Out(Arc<(StdMutex<usize>, Condvar)>);

impl Out {
    fn count(out: &Arc<(StdMutex<usize>, Condvar)>) -> Self {
        *out.0.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        Self(Arc::clone(out))
    }
}

impl Drop for Out {
    fn drop(&mut self) {
        let (count, done) = &*self.0;
        *count.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
        done.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc;

    use super::*;

    /// A call whose future is dropped while it runs (a run stopped mid-commit) still ends before
    /// the handle is gone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropping_the_handle_waits_for_an_abandoned_call() {
        let handle = Blocking::new(());
        let landed = Arc::new(AtomicBool::new(false));
        let (started_tx, started_rx) = mpsc::channel();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let l = Arc::clone(&landed);
        let call = handle.call(move |_| {
            started_tx.send(()).unwrap();
            go_rx.recv().unwrap();
            l.store(true, Ordering::SeqCst);
            Ok(())
        });
        let mut call = Box::pin(call);
        // Poll the call until its closure runs on the blocking pool, then abandon it.
        let started = tokio::task::spawn_blocking(move || started_rx.recv().unwrap());
        tokio::select! {
            _ = &mut call => unreachable!("the call waits for `go`"),
            _ = started => {}
        }
        drop(call);
        // Let the call finish only once the handle is being dropped.
        let (dropping_tx, dropping_rx) = mpsc::channel::<()>();
        let releaser = std::thread::spawn(move || {
            dropping_rx.recv().unwrap();
            go_tx.send(()).unwrap();
        });
        dropping_tx.send(()).unwrap();
        drop(handle);
        assert!(landed.load(Ordering::SeqCst), "the abandoned call had ended when the drop returned");
        releaser.join().unwrap();
    }
}
