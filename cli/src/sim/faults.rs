//! Turning a [`Fault`] into what the client sees.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::Fault;
use super::net::Conn;
use super::respond::{api_error, html, json, json_text, retry_after};
use super::state::Shared;

/// Where a fault strikes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Surface {
    Token,
    Api,
}

/// Body of a size no sane client should buffer whole (the limit clients use is 8 MiB).
const OVERSIZED_BYTES: usize = 9 * 1024 * 1024;

/// The 403 answer for an exhausted daily quota.
pub(crate) fn quota_response(secs: u64) -> Response {
    let msg = format!(
        "Out of call volume quota. Quota will be replenished in {:02}:{:02}:{:02}.",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    retry_after(api_error(StatusCode::FORBIDDEN, &msg), secs)
}

/// The 429 answer for the per-second rate limit.
pub(crate) fn rate_limit_response(secs: u64) -> Response {
    let unit = if secs == 1 { "second" } else { "seconds" };
    let msg = format!("Rate limit is exceeded. Try again in {secs} {unit}.");
    retry_after(api_error(StatusCode::TOO_MANY_REQUESTS, &msg), secs)
}

/// Applies `fault`. `None` means "answer normally" (after a `Slow` wait or a `Hold`). Counters are updated
/// here, except `token_errors`, which the token handler counts for every error it returns.
pub(crate) async fn apply(sim: &Shared, conn: &Conn, fault: Fault, surface: Surface) -> Option<Response> {
    let token = surface == Surface::Token;
    let resp = match fault {
        Fault::Slow { ms } => {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            return None;
        }
        Fault::Hold => {
            sim.hold().await;
            return None;
        }
        // The API serves a truncated page itself (it needs the page); elsewhere it is a drop.
        Fault::Drop | Fault::Truncated => {
            sim.lock().stats.dropped += 1;
            conn.kill();
            return Some(StatusCode::INTERNAL_SERVER_ERROR.into_response());
        }
        Fault::Status { code } => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            if token {
                let error = if status.is_server_error() { "server_error" } else { "invalid_request" };
                let desc = format!("Simulated {} response.", status.as_u16());
                json(status, &serde_json::json!({"error": error, "error_description": desc}))
            } else {
                let reason = status.canonical_reason().unwrap_or("Error");
                api_error(status, &format!("{reason} (simulated)."))
            }
        }
        Fault::Html { code } => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY);
            let reason = status.canonical_reason().unwrap_or("Error");
            html(status, &format!("{} {reason}", status.as_u16()), "The service is temporarily unavailable.")
        }
        Fault::Oversized => {
            let mut body = String::with_capacity(OVERSIZED_BYTES + 64);
            body.push_str("{\"count\":0,\"value\":[],\"padding\":\"");
            body.extend(std::iter::repeat_n('x', OVERSIZED_BYTES));
            body.push_str("\"}");
            json_text(StatusCode::OK, body)
        }
        Fault::TooManyRequests { retry_after_secs } => rate_limit_response(retry_after_secs),
        Fault::Quota => {
            let secs = sim.lock().secs_to_quota_refill();
            quota_response(secs)
        }
        Fault::InvalidGrant if token => json(
            StatusCode::BAD_REQUEST,
            &serde_json::json!({
                "error": "invalid_grant",
                "error_description": "The grant was invalid (simulated)."
            }),
        ),
        Fault::InvalidGrant => api_error(
            StatusCode::UNAUTHORIZED,
            "The required Authorization header was missing or invalid, or the token has expired.",
        ),
        Fault::WrongContentType => {
            let body = if token { "{\"error\":\"temporarily_unavailable\"}" } else { "{\"count\":0,\"value\":[]}" };
            let mut resp = (StatusCode::OK, Body::from(body)).into_response();
            resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            resp
        }
        Fault::Raw { status, content_type, body } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let mut resp = (status, Body::from(body)).into_response();
            if let Ok(v) = HeaderValue::from_str(&content_type) {
                resp.headers_mut().insert(header::CONTENT_TYPE, v);
            }
            resp
        }
        Fault::Redirect { status, location } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::FOUND);
            let mut resp = status.into_response();
            if let Ok(v) = HeaderValue::from_str(&location) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            resp
        }
    };
    count(sim, resp.status());
    Some(resp)
}

/// Updates the status-class counters for an injected answer.
fn count(sim: &Shared, status: StatusCode) {
    let mut s = sim.lock();
    match status.as_u16() {
        429 => s.stats.rate_limited += 1,
        403 => s.stats.quota_rejections += 1,
        401 => s.stats.unauthorized += 1,
        500..=599 => s.stats.server_errors += 1,
        _ => {}
    }
}

/// A 200 whose `Content-Length` promises `body` but whose body stops halfway and then fails, so
/// hyper closes the connection: the client reads a short, unparseable body or a body error.
pub(crate) fn truncated(sim: &Shared, body: String) -> Response {
    sim.lock().stats.truncated += 1;
    let bytes = axum::body::Bytes::from(body);
    let full = bytes.len();
    let half = bytes.slice(..full / 2);
    let chunks: Vec<Result<axum::body::Bytes, std::io::Error>> =
        vec![Ok(half), Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "simulated truncated body"))];
    let mut resp = (StatusCode::OK, Body::from_stream(futures::stream::iter(chunks))).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(full));
    resp
}
