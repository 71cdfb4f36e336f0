//! Why no access token could be had.
//!
//! The texts name no command: browser users read them too. The CLI adds its commands where it
//! prints errors.

use crate::http::TransportError;
use crate::store::StoreError;
use crate::token::TokenError;

/// Why no access token could be had.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// Nothing is stored: nobody has consented yet for this profile.
    #[error("no tokens are stored for this profile; someone must consent first")]
    NotLoggedIn,
    /// The refresh token expired.
    #[error("the refresh token expired on {expired_at}; someone must consent again")]
    RefreshTokenExpired {
        /// When it expired (RFC 3339).
        expired_at: String,
    },
    /// The stored tokens belong to another application.
    #[error(
        "the stored tokens were issued to application {stored}, but the configured client_id is {configured}; someone must consent for this application"
    )]
    WrongClient {
        /// client_id in the store.
        stored: String,
        /// configured client_id.
        configured: String,
    },
    /// The token endpoint refused.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The token endpoint could not be reached.
    #[error("could not reach the token endpoint: {0}")]
    Transport(#[from] TransportError),
    /// The store failed.
    #[error("token store: {0}")]
    Store(#[from] StoreError),
    /// A preserving refresh got new tokens that could not be saved. The stored refresh token was
    /// preserved, so it still works; only the new access token is lost.
    #[error(
        "received new tokens but could not save them: {0}. The refresh token was preserved, so the stored one still works"
    )]
    SaveFailed(StoreError),
    /// A rotation's new refresh token could not be saved in the store, and was written to a
    /// rescue file beside it instead, which the next run adopts.
    #[error(
        "the refresh token was rotated, but the new one could not be saved in the token store: {error}. It was written to {rescue_file} instead (mode 0600); the next skysync run adopts it automatically once the store is writable again. Do not delete that file: the stored refresh token no longer works"
    )]
    RotationRescued {
        /// Why the save failed.
        error: StoreError,
        /// Where the new tokens are.
        rescue_file: String,
    },
    /// A rotation's new refresh token could be saved nowhere: it is lost.
    #[error(
        "the refresh token was rotated, but the new one could not be saved: {error}; writing a rescue file failed too ({rescue_error}). The stored refresh token no longer works: fix the token directory (space, permissions), then consent again"
    )]
    RotationUnsaved {
        /// Why the save failed.
        error: StoreError,
        /// Why the rescue file failed.
        rescue_error: StoreError,
    },
    /// A rotation is only sent once its intent is on disk; the store refused that write.
    #[error("the token store is not writable, so the rotation was not sent (nothing changed): {0}")]
    StoreNotWritable(StoreError),
    /// A rotation's response was lost earlier, and the old refresh token is now refused.
    #[error(
        "the refresh token was rotated at {started_at}, but the response never arrived, so the new refresh token was lost and the stored one is no longer valid; someone must consent again"
    )]
    RotationLost {
        /// When the lost rotation was sent (RFC 3339).
        started_at: String,
    },
    /// An earlier refresh was refused (`invalid_grant`): the grant is dead.
    #[error(
        "the token endpoint refused this profile's refresh token at {refused_at} (invalid_grant: revoked, expired or replaced), so its tokens are not used any more; someone must consent again"
    )]
    GrantRefused {
        /// When the refusal was recorded (RFC 3339).
        refused_at: String,
    },
    /// The background refresh task went away (the runtime shut down).
    #[error("the token refresh was cancelled")]
    Cancelled,
}

impl SessionError {
    /// Whether a person must consent again (exit code 4 in the CLI).
    pub fn needs_consent(&self) -> bool {
        matches!(
            self,
            SessionError::NotLoggedIn
                | SessionError::RefreshTokenExpired { .. }
                | SessionError::WrongClient { .. }
                | SessionError::RotationLost { .. }
                | SessionError::RotationRescued { .. }
                | SessionError::RotationUnsaved { .. }
                | SessionError::GrantRefused { .. }
                | SessionError::Token(TokenError::ConsentRequired { .. })
        )
    }
}
