//! The HTTP control API (`POST /_sim/control`), mirroring [`SimHandle`](super::SimHandle)'s knobs
//! for tests that drive a separate `skysync sim` process. See the module docs of
//! [`sim`](super) for examples.

use std::time::Duration;

use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::respond::json;
use super::state::Shared;
use super::{ActionsPaging, BasicDecoding, Fault, FaultRates, PreservedRefreshExpiry, SimStats};

/// One control command, tagged by `op`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Command {
    FailNextToken {
        n: u32,
        fault: Fault,
    },
    FailNextApi {
        n: u32,
        fault: Fault,
    },
    ReleaseHeld,
    DropResponseAfterRotation {
        n: u32,
    },
    SetTokenDelay {
        before_ms: u64,
        after_ms: u64,
    },
    SetRevokeGrantOnReplay {
        enabled: bool,
    },
    RefreshTokenState {
        token: String,
    },
    SetDenyConsent {
        deny: bool,
    },
    SetQuota {
        remaining: Option<u64>,
    },
    SetRateLimit {
        per_sec: Option<u32>,
    },
    SetFaultRates {
        rates: FaultRates,
    },
    SetTokenCors {
        enabled: bool,
    },
    SetBasicDecoding {
        decoding: BasicDecoding,
    },
    SetPreservedRefreshExpiry {
        mode: PreservedRefreshExpiry,
    },
    SetAccessTokenTtl {
        secs: u64,
    },
    SetNextLinkKeepsFilters {
        keep: bool,
    },
    SetActionsPaging {
        paging: ActionsPaging,
    },
    SetListLag {
        secs: Option<u64>,
        #[serde(default)]
        everywhere: bool,
    },
    RegisterRedirectUri {
        uri: String,
    },
    AdvanceClock {
        secs: u64,
    },
    RevokeRefreshTokens,
    Modify {
        entity: String,
        count: u64,
    },
    Add {
        entity: String,
        count: u64,
    },
    Delete {
        entity: String,
        count: u64,
    },
    LiveIds {
        entity: String,
    },
    Record {
        entity: String,
        id: String,
    },
    IssueTokens,
    Stats,
    ResetStats,
}

/// Runs one command; `Err` is a message for a 400 answer.
pub(crate) fn run(sim: &Shared, cmd: Command) -> Result<serde_json::Value, String> {
    let mut s = sim.lock();
    let ids = |r: Result<Vec<String>, String>| r.map(|ids| json!({ "ids": ids }));
    match cmd {
        Command::FailNextToken { n, fault } => {
            s.token_faults.extend(std::iter::repeat_n(fault, n as usize));
        }
        Command::FailNextApi { n, fault } => {
            s.api_faults.extend(std::iter::repeat_n(fault, n as usize));
        }
        Command::ReleaseHeld => sim.release_held(),
        Command::DropResponseAfterRotation { n } => s.drop_after_rotation += n,
        Command::SetTokenDelay { before_ms, after_ms } => {
            s.grants.delay = super::grants::TokenDelay { before_ms, after_ms };
        }
        Command::SetRevokeGrantOnReplay { enabled } => s.grants.revoke_on_replay = enabled,
        Command::RefreshTokenState { token } => {
            return Ok(json!({ "state": super::grants::state(&mut s, &token) }));
        }
        Command::SetDenyConsent { deny } => s.cfg.deny_consent = deny,
        Command::SetQuota { remaining } => {
            s.cfg.daily_quota = remaining;
            s.quota_used = 0;
        }
        Command::SetRateLimit { per_sec } => {
            s.cfg.rate_limit_per_sec = per_sec;
            s.rate_window.clear();
        }
        Command::SetFaultRates { rates } => s.cfg.faults = rates,
        Command::SetTokenCors { enabled } => s.token_cors = enabled,
        Command::SetBasicDecoding { decoding } => s.cfg.basic_decoding = decoding,
        Command::SetPreservedRefreshExpiry { mode } => s.cfg.preserved_refresh_expiry = mode,
        Command::SetAccessTokenTtl { secs } => s.cfg.access_token_ttl = Duration::from_secs(secs),
        Command::SetNextLinkKeepsFilters { keep } => s.cfg.next_link_keeps_filters = keep,
        Command::SetActionsPaging { paging } => s.cfg.actions_paging = paging,
        Command::SetListLag { secs, everywhere } => {
            s.cfg.list_lag = secs.map(Duration::from_secs);
            s.cfg.list_lag_everywhere = everywhere;
        }
        Command::RegisterRedirectUri { uri } => {
            if !s.cfg.redirect_uris.contains(&uri) {
                s.cfg.redirect_uris.push(uri);
            }
        }
        Command::AdvanceClock { secs } => s.advance(Duration::from_secs(secs)),
        Command::RevokeRefreshTokens => s.refresh.clear(),
        Command::Modify { entity, count } => return ids(s.modify(&entity, count)),
        Command::Add { entity, count } => return ids(s.add(&entity, count)),
        Command::Delete { entity, count } => return ids(s.delete(&entity, count)),
        Command::LiveIds { entity } => return ids(s.live_ids(&entity)),
        Command::Record { entity, id } => return s.record(&entity, &id).map(|r| json!({ "record": r })),
        Command::IssueTokens => return Ok(json!({ "tokens": s.issue_tokens(None) })),
        Command::Stats => return Ok(json!({ "stats": s.stats })),
        Command::ResetStats => s.stats = SimStats::default(),
    }
    Ok(json!({}))
}

/// `POST /_sim/control`.
pub(crate) async fn handle(sim: &Shared, req: Request) -> Response {
    if req.method() != Method::POST {
        return json(StatusCode::METHOD_NOT_ALLOWED, &json!({"ok": false, "error": "use POST"}));
    }
    let body = match axum::body::to_bytes(req.into_body(), 1024 * 1024).await {
        Ok(b) => b,
        Err(e) => return json(StatusCode::BAD_REQUEST, &json!({"ok": false, "error": e.to_string()})),
    };
    let cmd: Command = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => return json(StatusCode::BAD_REQUEST, &json!({"ok": false, "error": e.to_string()})),
    };
    match run(sim, cmd) {
        Ok(mut v) => {
            v["ok"] = json!(true);
            json(StatusCode::OK, &v)
        }
        Err(e) => json(StatusCode::BAD_REQUEST, &json!({"ok": false, "error": e})),
    }
}
