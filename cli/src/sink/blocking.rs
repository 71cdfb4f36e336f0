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
