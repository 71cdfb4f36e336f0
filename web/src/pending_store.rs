//! The started consent (PKCE verifier, `state`, redirect URI) in `sessionStorage`: it must survive
//! the round trip through Blackbaud's consent page, and stays within the tab.

use gloo_storage::errors::StorageError;
use gloo_storage::{SessionStorage, Storage};
use serde::{Deserialize, Serialize};
use skysync_core::authorize::PendingAuthorization;

use crate::error::{ErrorKind, Failure};

/// What is kept between `authorizeUrl()` and `handleRedirect()`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Pending {
    pub(crate) client_id: String,
    #[serde(flatten)]
    pub(crate) authorization: PendingAuthorization,
}

/// `sessionStorage` under one key prefix.
#[derive(Debug, Clone)]
pub(crate) struct PendingStore {
    prefix: String,
}

fn storage_failure(e: StorageError) -> Failure {
    Failure::new(ErrorKind::Storage, format!("sessionStorage: {e}"))
}

impl PendingStore {
    pub(crate) fn new(prefix: &str) -> Self {
        Self { prefix: prefix.to_owned() }
    }

    fn key(&self) -> String {
        format!("{}pending", self.prefix)
    }

    pub(crate) fn save(&self, pending: &Pending) -> Result<(), Failure> {
        SessionStorage::set(self.key(), pending).map_err(storage_failure)
    }

    /// Reads and removes the pending consent: a redirect can be handled once.
    pub(crate) fn take(&self) -> Result<Option<Pending>, Failure> {
        let key = self.key();
        let found = match SessionStorage::get::<Pending>(&key) {
            Ok(p) => Some(p),
            Err(StorageError::KeyNotFound(_)) => None,
            Err(e) => {
                SessionStorage::delete(&key);
                return Err(storage_failure(e));
            }
        };
        SessionStorage::delete(&key);
        Ok(found)
    }

    /// Whether a consent was started in this tab and not yet handled.
    pub(crate) fn has_pending(&self) -> bool {
        SessionStorage::raw().get_item(&self.key()).ok().flatten().is_some()
    }

    /// Removes every key under the prefix (the page's own saved form included).
    pub(crate) fn clear_all(&self) -> Result<u32, Failure> {
        let raw = SessionStorage::raw();
        let len = raw.length().map_err(|_| Failure::new(ErrorKind::Storage, "sessionStorage is unavailable"))?;
        let keys: Vec<String> =
            (0..len).filter_map(|i| raw.key(i).ok().flatten()).filter(|k| k.starts_with(&self.prefix)).collect();
        for k in &keys {
            let _ = raw.remove_item(k);
        }
        Ok(keys.len() as u32)
    }
}
