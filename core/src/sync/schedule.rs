//! When a run does more than follow its bookmarks: when a delete reconciliation is due, and which
//! errors stop every entity of a run rather than the one that met them.

use time::OffsetDateTime;

use super::plan::{StoredState, SyncOptions};
use crate::api::ApiError;

/// Whether `stored` calls for a delete reconciliation (an id scan) this run: when asked, when an
/// earlier one was interrupted, or when `reconcile_every` has passed since the last one.
pub fn reconcile_due(options: &SyncOptions, stored: Option<&StoredState>, now: OffsetDateTime) -> bool {
    if options.full {
        // A full resync replaces the whole table: deletes are handled by the swap.
        return false;
    }
    let Some(stored) = stored else { return options.reconcile };
    if options.reconcile || stored.reconcile_in_progress {
        return true;
    }
    match (options.reconcile_every, stored.last_reconcile_at, stored.bookmark.is_some()) {
        (Some(every), Some(last), _) => now - last >= every,
        // Never reconciled, but synced before: the first scheduled reconciliation is due.
        (Some(_), None, true) => true,
        _ => false,
    }
}

/// Whether `error` stops every entity of the run, not just the one that met it: quota, budget,
/// rate limit, consent and subscription key would hit all of them.
pub fn stops_run(error: &ApiError) -> bool {
    matches!(
        error,
        ApiError::QuotaExhausted { .. }
            | ApiError::BudgetSpent { .. }
            | ApiError::DailyQuotaReached { .. }
            | ApiError::RateLimited { .. }
            | ApiError::Session(_)
            | ApiError::SubscriptionKey { .. }
            | ApiError::Unauthorized { .. }
    )
}

/// The first error of a run that [stops it](stops_run). Entities check it before each request, so
/// the ones still running end as soon as one of them meets such an error.
#[derive(Debug, Default)]
pub struct RunStop(Option<ApiError>);

impl RunStop {
    /// Notes an error one entity met; returns whether it stops the run. The first one is kept.
    pub fn note(&mut self, error: &ApiError) -> bool {
        let stops = stops_run(error);
        if stops && self.0.is_none() {
            self.0 = Some(error.clone());
        }
        stops
    }

    /// Why the run stopped, if it did.
    pub fn reason(&self) -> Option<&ApiError> {
        self.0.as_ref()
    }

    /// Why the run stopped, if it did.
    pub fn into_reason(self) -> Option<ApiError> {
        self.0
    }
}
