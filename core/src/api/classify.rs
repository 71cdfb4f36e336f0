//! What a SKY API response means: success, 401, 429, quota 403, 5xx, or a failure to report.

use std::time::Duration;

use crate::api::ApiError;
use crate::http::HttpResponse;

/// What an API response means for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx.
    Success,
    /// 401: the access token was rejected (or the subscription key is wrong).
    Unauthorized {
        /// Whether the message blames the subscription key (refreshing will not help).
        subscription_key: bool,
        /// The server's message.
        message: String,
    },
    /// 429: wait and try again.
    RateLimited {
        /// The server's `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// 403 "Out of call volume quota": stop for the day.
    QuotaExhausted {
        /// When the quota replenishes, from `Retry-After` or the message.
        retry_after: Option<Duration>,
        /// The server's message.
        message: String,
    },
    /// 5xx (and 408): retry with backoff.
    Transient {
        /// HTTP status.
        status: u16,
        /// The server's message, shown if the retries run out.
        message: String,
    },
    /// Any other failure: retrying will not help.
    Failed {
        /// HTTP status.
        status: u16,
        /// The server's message, or a safe excerpt of the body.
        message: String,
    },
}

/// Reads Blackbaud's error message out of one of its several error shapes.
pub fn error_message(response: &HttpResponse) -> String {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&response.body) {
        let pick = |v: &serde_json::Value| -> Option<String> {
            for key in ["message", "Message", "error_description", "title", "detail", "error"] {
                if let Some(s) = v.get(key).and_then(|m| m.as_str()) {
                    return Some(crate::sanitize::server_text(s));
                }
            }
            None
        };
        if let Some(m) = pick(&v) {
            return m;
        }
        if let Some(first) = v.as_array().and_then(|a| a.first()).or_else(|| v.get("errors").and_then(|e| e.get(0)))
            && let Some(m) = pick(first)
        {
            return m;
        }
    }
    response.body_excerpt()
}

/// Parses `Retry-After` (delta-seconds; HTTP dates are not used by Blackbaud).
pub fn retry_after(response: &HttpResponse) -> Option<Duration> {
    response.header("retry-after").and_then(|v| v.trim().parse::<u64>().ok()).map(Duration::from_secs)
}

/// Parses "Quota will be replenished in HH:MM:SS" from a quota message.
pub fn quota_replenish(message: &str) -> Option<Duration> {
    let tail = message.split("replenished in").nth(1)?.trim().trim_end_matches('.');
    let parts: Vec<u64> = tail.split(':').map(|p| p.trim().parse().ok()).collect::<Option<_>>()?;
    match parts.as_slice() {
        [h, m, s] => Some(Duration::from_secs(h * 3600 + m * 60 + s)),
        [d, h, m, s] => Some(Duration::from_secs(d * 86400 + h * 3600 + m * 60 + s)),
        _ => None,
    }
}

/// Classifies a response.
pub fn classify(response: &HttpResponse) -> Verdict {
    match response.status {
        200..=299 => Verdict::Success,
        401 => {
            let message = error_message(response);
            Verdict::Unauthorized {
                subscription_key: message.to_ascii_lowercase().contains("subscription key"),
                message,
            }
        }
        429 => Verdict::RateLimited { retry_after: retry_after(response) },
        403 => {
            let message = error_message(response);
            if message.contains("Out of call volume quota") {
                let retry_after = retry_after(response).or_else(|| quota_replenish(&message));
                Verdict::QuotaExhausted { retry_after, message }
            } else {
                Verdict::Failed { status: 403, message }
            }
        }
        408 | 500..=599 => Verdict::Transient { status: response.status, message: error_message(response) },
        status => Verdict::Failed { status, message: error_message(response) },
    }
}

/// The JSON body of a 2xx response, or a clear error for HTML pages and other surprises.
pub fn json_body(response: &HttpResponse, what: &str) -> Result<serde_json::Value, ApiError> {
    let url = what.split('?').next().unwrap_or(what).to_owned();
    if response.status == 204 || response.body.is_empty() {
        return Ok(serde_json::Value::Null);
    }
    if !response.is_json() {
        return Err(ApiError::Malformed { url, problem: format!("expected JSON, got {}", response.body_excerpt()) });
    }
    serde_json::from_slice(&response.body)
        .map_err(|e| ApiError::Malformed { url, problem: format!("invalid JSON: {e}") })
}
