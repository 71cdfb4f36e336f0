//! The host: what the core needs from whatever runs it. Clock and entropy injection, a way to run
//! a task to completion and to sleep (not environment variables: the core reads none). Native
//! hosts use tokio; the browser uses `setTimeout` and `spawn_local`.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use time::OffsetDateTime;

/// `Send + Sync` natively, nothing on wasm32 where browser futures are not `Send`.
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSend: Send + Sync {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Send + Sync + ?Sized> MaybeSend for T {}
/// `Send + Sync` natively, nothing on wasm32 where browser futures are not `Send`.
#[cfg(target_arch = "wasm32")]
pub trait MaybeSend {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSend for T {}

/// A boxed future that is `Send` natively and not on wasm32.
#[cfg(not(target_arch = "wasm32"))]
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
/// A boxed future that is `Send` natively and not on wasm32.
#[cfg(target_arch = "wasm32")]
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// The current time.
pub trait Clock: MaybeSend {
    /// Now, in UTC.
    fn now(&self) -> OffsetDateTime;
}

/// Cryptographically secure random bytes.
pub trait Entropy: MaybeSend {
    /// Fills `buf` with random bytes.
    fn fill(&self, buf: &mut [u8]);
}

/// Runs background work and sleeps.
pub trait Runtime: MaybeSend {
    /// Runs `task` to completion even if whoever started it stops waiting. Used so that a token
    /// refresh that received new tokens always finishes saving them.
    fn spawn(&self, task: BoxFuture<'static, ()>);
    /// Waits for `duration`.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
}

/// The operating system's clock (not available on wasm32-unknown-unknown, where the host passes
/// the browser's clock).
#[cfg(not(target_arch = "wasm32"))]
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

#[cfg(not(target_arch = "wasm32"))]
impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one allowed shim for native targets
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// The operating system's (or the browser's) secure random source, via `getrandom`.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn fill(&self, buf: &mut [u8]) {
        getrandom::fill(buf).expect("the operating system's random source failed");
    }
}

/// Test doubles: a clock that only moves when told, and deterministic entropy.
pub mod testing {
    use super::*;
    use std::sync::Mutex;

    /// A clock that stays where it is put.
    #[derive(Debug)]
    pub struct FixedClock(Mutex<OffsetDateTime>);

    impl FixedClock {
        /// A clock at `at`.
        pub fn new(at: OffsetDateTime) -> Self {
            Self(Mutex::new(at))
        }
        /// Moves the clock forward.
        pub fn advance(&self, by: Duration) {
            let mut t = self.0.lock().expect("clock lock");
            *t += by;
        }
        /// Sets the clock.
        pub fn set(&self, at: OffsetDateTime) {
            *self.0.lock().expect("clock lock") = at;
        }
    }

    impl Clock for FixedClock {
        fn now(&self) -> OffsetDateTime {
            *self.0.lock().expect("clock lock")
        }
    }

    /// Deterministic bytes from a seed (splitmix64). Never use outside tests.
    #[derive(Debug)]
    pub struct SeededEntropy(Mutex<u64>);

    impl SeededEntropy {
        /// Entropy that always produces the same stream for the same seed.
        pub fn new(seed: u64) -> Self {
            Self(Mutex::new(seed))
        }
    }

    impl Entropy for SeededEntropy {
        fn fill(&self, buf: &mut [u8]) {
            let mut state = self.0.lock().expect("entropy lock");
            for chunk in buf.chunks_mut(8) {
                *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = *state;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^= z >> 31;
                chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
            }
        }
    }
}
