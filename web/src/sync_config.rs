//! The options object JavaScript passes to `new SkySync(auth, options)`, and what a run reports.

use serde::{Deserialize, Serialize};
use skysync_core::sync::{Entity, PlanError, RunMode, SyncOptions, find};

use crate::error::{ErrorKind, Failure};

/// `SkySyncOptions` in TypeScript. Unknown fields are an error (a typo must not silently drop a
/// setting).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawOptions {
    entity: String,
    #[serde(default)]
    page_size: Option<u32>,
}

/// What a `SkySync` runs: one catalog entity, incrementally.
#[derive(Debug, Clone, Copy)]
pub struct SyncConfig {
    /// The entity synced.
    pub entity: &'static Entity,
    /// The planner's options: incremental runs only (no `--full`, no delete reconciliation).
    pub options: SyncOptions,
}

impl SyncConfig {
    /// Reads the options object's JSON text.
    pub fn from_json(text: &str) -> Result<Self, Failure> {
        let raw: RawOptions = serde_json::from_str(text)
            .map_err(|e| Failure::new(ErrorKind::Config, format!("invalid SkySync options: {e}")))?;
        let entity = find(&raw.entity).ok_or_else(|| {
            Failure::new(
                ErrorKind::Config,
                format!("unknown entity {:?}; SkySync.entities() lists the ones skysync knows", raw.entity),
            )
        })?;
        if let Some(size) = raw.page_size
            && !(1..=entity.max_limit).contains(&size)
        {
            return Err(Failure::new(
                ErrorKind::Config,
                format!("pageSize must be between 1 and {} for {}, not {size}", entity.max_limit, entity.name),
            ));
        }
        Ok(Self { entity, options: SyncOptions { page_size: raw.page_size, ..SyncOptions::default() } })
    }
}

/// `SkySyncResult` in TypeScript: what one `run()` did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncResult {
    /// The entity synced.
    pub entity: &'static str,
    /// `"initial"` (no bookmark given) or `"incremental"`.
    pub mode: RunMode,
    /// Pages handed to `onPage`.
    pub pages: u64,
    /// Rows handed to `onPage`.
    pub rows: u64,
    /// SKY API requests sent (retries included).
    pub calls: u64,
    /// The bookmark of the last page committed (the one to pass next time); `null` when no page
    /// was fetched.
    pub bookmark: Option<String>,
}

/// A plan's failure in the bindings' terms: an unreadable bookmark is the app's to fix, the rest
/// is what the API sent.
pub fn plan_failure(e: PlanError) -> Failure {
    let kind = match &e {
        PlanError::Bookmark { .. } => ErrorKind::Bookmark,
        _ => ErrorKind::Api,
    };
    let message = match &e {
        PlanError::Bookmark { .. } => {
            format!("{e}; pass back the bookmark onPage received for this entity, or none to start over")
        }
        _ => e.to_string(),
    };
    Failure::new(kind, message)
}
