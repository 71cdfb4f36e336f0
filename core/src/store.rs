//! Where token sets live. The CLI keeps them in a locked file; tests and the browser in memory.

use std::sync::Mutex;

use crate::host::MaybeSend;
use crate::token_set::TokenSet;

/// A token set and the store's generation counter, used for compare-and-swap.
#[derive(Debug, Clone)]
pub struct Versioned {
    /// The tokens.
    pub tokens: TokenSet,
    /// Increases on every save.
    pub generation: u64,
}

/// Why the store failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Another writer saved first; re-read and decide again.
    #[error("the token store changed underneath us (expected generation {expected:?}, found {found:?})")]
    Conflict {
        /// The generation the writer read.
        expected: Option<u64>,
        /// The generation now stored.
        found: Option<u64>,
    },
    /// The stored data cannot be read.
    #[error("the token store is corrupt: {0}")]
    Corrupt(String),
    /// The store is unsafe to use (for example readable by other users).
    #[error("{0}")]
    Insecure(String),
    /// Reading or writing failed.
    #[error("{0}")]
    Io(String),
    /// The store is encrypted and its key is missing, unusable or not the one it was written
    /// with (the message names the file and the fix). Nothing was read or changed.
    #[error("{0}")]
    Key(String),
    /// Another process (on this host or another) held the store's lock longer than this one may
    /// wait. Nothing was read or changed.
    #[error("{0}")]
    Busy(String),
    /// The tokens were handed over to another holder (the CLI's `skysync export`) and are not
    /// used or refreshed here: two refreshers of one grant destroy each other's rotations. The
    /// message says where they went and when.
    #[error("{0}")]
    HandedOver(String),
}

/// Holds a store's exclusive lock until dropped.
pub struct StoreLock(#[allow(dead_code)] Option<Box<dyn MaybeSend>>);

impl StoreLock {
    /// A lock that guards nothing (stores used by one process only).
    pub fn none() -> Self {
        Self(None)
    }
    /// Wraps a guard whose drop releases the lock.
    pub fn new(guard: Box<dyn MaybeSend>) -> Self {
        Self(Some(guard))
    }
}

impl std::fmt::Debug for StoreLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreLock")
    }
}

/// Persistent storage for one profile's token set.
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
pub trait TokenStore: MaybeSend {
    /// The stored tokens, if any.
    async fn load(&self) -> Result<Option<Versioned>, StoreError>;
    /// Saves `tokens` if the stored generation is still `expected` (`None`: nothing stored yet).
    /// Returns the new generation. Fails with [`StoreError::Conflict`] otherwise.
    async fn save(&self, tokens: &TokenSet, expected: Option<u64>) -> Result<u64, StoreError>;
    /// Takes the store's exclusive lock, waiting for other holders (other processes, for a file
    /// store). Refreshes happen under it so only one caller talks to the token endpoint.
    async fn lock(&self) -> Result<StoreLock, StoreError> {
        Ok(StoreLock::none())
    }
    /// Keeps `tokens` somewhere other than the main store, after a save of a rotated refresh
    /// token failed: the new refresh token is the only one that works, so it must not exist only
    /// in memory. Returns where it went (for the user; the store adopts it on a later run). A
    /// store without such a place (the default) fails.
    async fn rescue(&self, _tokens: &TokenSet) -> Result<String, StoreError> {
        Err(StoreError::Io("this token store has no rescue location".into()))
    }
}

/// A store in memory, for tests, the browser and embedding.
#[derive(Debug, Default)]
pub struct MemoryStore(Mutex<Option<Versioned>>);

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
    /// A store holding `tokens` at generation 1.
    pub fn with(tokens: TokenSet) -> Self {
        Self(Mutex::new(Some(Versioned { tokens, generation: 1 })))
    }
    /// A copy of what is stored.
    pub fn snapshot(&self) -> Option<Versioned> {
        self.0.lock().expect("store lock").clone()
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl TokenStore for MemoryStore {
    async fn load(&self) -> Result<Option<Versioned>, StoreError> {
        Ok(self.snapshot())
    }

    async fn save(&self, tokens: &TokenSet, expected: Option<u64>) -> Result<u64, StoreError> {
        let mut slot = self.0.lock().expect("store lock");
        let found = slot.as_ref().map(|v| v.generation);
        if found != expected {
            return Err(StoreError::Conflict { expected, found });
        }
        let generation = found.unwrap_or(0) + 1;
        *slot = Some(Versioned { tokens: tokens.clone(), generation });
        Ok(generation)
    }
}
