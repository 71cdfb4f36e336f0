//! The tokio host for the core's [`Runtime`] trait.

use std::time::Duration;

use skysync_core::env::{BoxFuture, Runtime};

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
