//! `/oauth/authorize` and `/token`, as Blackbaud documents them (see `sky-api.md` §1-4).

use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use url::Url;

use super::faults::{Surface, apply};
use super::net::Conn;
use super::respond::{html, json, pairs, param};
use super::state::{AuthCode, Shared};
use super::{BasicDecoding, PreservedRefreshExpiry, SimConfig};

const CODE_LIFETIME: time::Duration = time::Duration::minutes(5);
const DENIED: &str = "The user chose not to give your app access to their Blackbaud data.";
const BAD_REFRESH: &str =
    "The grant was rejected: an expired, revoked, or otherwise invalid refresh token was supplied.";

fn redirect_allowed(cfg: &SimConfig, uri: &str) -> bool {
    if cfg.redirect_uris.iter().any(|r| r == uri) {
        return true;
    }
    cfg.allow_any_loopback_redirect
        && Url::parse(uri).is_ok_and(|u| {
            u.scheme() == "http" && matches!(u.host_str(), Some("127.0.0.1" | "localhost")) && u.fragment().is_none()
        })
}

fn found(url: &Url) -> Response {
    let mut resp = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(url.as_str()) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// `GET /oauth/authorize`: validate, then consent (or deny) at once.
pub(crate) fn authorize(sim: &Shared, req: &Request) -> Response {
    let q = pairs(req.uri().query().unwrap_or("").as_bytes());
    let mut s = sim.lock();
    match param(&q, "client_id") {
        None => {
            return html(
                StatusCode::BAD_REQUEST,
                "invalid_client",
                "The required client_id parameter was not provided.",
            );
        }
        Some(c) if c != s.cfg.client_id => {
            let msg = format!("The value specified for the client_id parameter '{c}' was not valid.");
            return html(StatusCode::BAD_REQUEST, "invalid_client", &msg);
        }
        Some(_) => {}
    }
    let redirect_uri = param(&q, "redirect_uri").unwrap_or("");
    let mut url = match Url::parse(redirect_uri) {
        Ok(url) if redirect_allowed(&s.cfg, redirect_uri) => url,
        _ => {
            let msg = format!(
                "The specified value for the redirect_uri parameter '{redirect_uri}' did not match any pre-registered values."
            );
            return html(StatusCode::BAD_REQUEST, "invalid_redirect_uri", &msg);
        }
    };
    let state = param(&q, "state");
    let fail = |mut url: Url, error: &str, key: &str, message: &str| {
        {
            let mut qp = url.query_pairs_mut();
            qp.append_pair("error", error).append_pair(key, message);
            if let Some(st) = state {
                qp.append_pair("state", st);
            }
        }
        found(&url)
    };
    match param(&q, "response_type") {
        None => {
            let msg = "The required response_type parameter was not provided.";
            return fail(url, "invalid_request", "error_description", msg);
        }
        Some("code") => {}
        Some(other) => {
            let msg = format!("The response_type '{other}' is not supported.");
            return fail(url, "unsupported_response_type", "error_description", &msg);
        }
    }
    let challenge = param(&q, "code_challenge").map(str::to_owned);
    if challenge.is_some() && param(&q, "code_challenge_method").is_some_and(|m| m != "S256") {
        let msg = "Only the S256 code_challenge_method is supported.";
        return fail(url, "invalid_request", "error_description", msg);
    }
    if s.cfg.deny_consent {
        return fail(url, "access_denied", "error_message", DENIED);
    }
    let code = s.random_hex(32);
    let issued = s.now();
    let client_id = s.cfg.client_id.clone();
    let grant = AuthCode { client_id, redirect_uri: redirect_uri.to_owned(), challenge, issued };
    s.codes.insert(code.clone(), grant);
    {
        let mut qp = url.query_pairs_mut();
        qp.append_pair("code", &code);
        if let Some(st) = state {
            qp.append_pair("state", st);
        }
    }
    found(&url)
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    json(status, &serde_json::json!({"error": error, "error_description": description}))
}

fn invalid_grant(description: &str) -> Response {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", description)
}

fn invalid_client(description: &str) -> Response {
    let mut resp = oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", description);
    resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"token\""));
    resp
}

/// The `(client_id, client_secret)` of an `Authorization: Basic` header, decoded as `decoding`
/// says: Blackbaud's samples send the pair as is, RFC 6749 §2.3.1 form-encodes each part first.
fn basic_credentials(value: &HeaderValue, decoding: BasicDecoding) -> Option<(String, String)> {
    let v = value.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(rest.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    match decoding {
        BasicDecoding::Raw => Some((id.to_owned(), secret.to_owned())),
        BasicDecoding::FormDecoded => Some((form_decode(id)?, form_decode(secret)?)),
    }
}

/// `application/x-www-form-urlencoded` decoding of one component: `+` is a space, `%XX` a byte.
fn form_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// `POST /token`.
pub(crate) async fn token(sim: &Shared, conn: &Conn, req: Request) -> Response {
    sim.lock().stats.token_calls += 1;
    super::grants::delay(sim, false).await;
    let resp = token_inner(sim, conn, req).await;
    super::grants::delay(sim, true).await;
    if !resp.status().is_success() {
        sim.lock().stats.token_errors += 1;
    }
    resp
}

async fn token_inner(sim: &Shared, conn: &Conn, req: Request) -> Response {
    if req.method() != Method::POST {
        return oauth_error(StatusCode::METHOD_NOT_ALLOWED, "invalid_request", "Use POST.");
    }
    let fault = sim.lock().token_faults.pop_front();
    if let Some(fault) = fault
        && let Some(resp) = apply(sim, conn, fault, Surface::Token).await
    {
        return resp;
    }
    let form_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
    if !form_type {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The Content-Type must be application/x-www-form-urlencoded.",
        );
    }
    let decoding = sim.lock().cfg.basic_decoding;
    let basic = match req.headers().get(header::AUTHORIZATION) {
        Some(v) => match basic_credentials(v, decoding) {
            Some(creds) => Some(creds),
            None => return invalid_client("The specified credentials were not valid."),
        },
        None => None,
    };
    let body = match axum::body::to_bytes(req.into_body(), 64 * 1024).await {
        Ok(b) => b,
        Err(_) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "Unreadable body."),
    };
    let form = pairs(&body);
    let grant_type = param(&form, "grant_type");
    let (client_id, secret) = match basic {
        Some((id, secret)) => (Some(id), Some(secret)),
        None => (param(&form, "client_id").map(str::to_owned), param(&form, "client_secret").map(str::to_owned)),
    };
    {
        let s = sim.lock();
        let Some(client_id) = client_id.as_deref() else {
            return invalid_client("The required credentials were not supplied.");
        };
        if client_id != s.cfg.client_id {
            return invalid_client("The specified credentials were not valid.");
        }
        let public_ok = s.cfg.public_client
            && grant_type == Some("authorization_code")
            && param(&form, "code_verifier").is_some()
            && secret.is_none();
        match secret.as_deref() {
            _ if public_ok => {}
            None => return invalid_client("The required credentials were not supplied."),
            Some(sec) if sec != s.cfg.client_secret => {
                return invalid_client("The specified credentials were not valid.");
            }
            Some(_) => {}
        }
    }
    match grant_type {
        None => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The required grant_type parameter was not provided.",
        ),
        Some("authorization_code") => exchange_code(sim, &form),
        Some("refresh_token") => refresh(sim, conn, &form),
        Some(other) => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            &format!("The grant_type '{other}' is not supported."),
        ),
    }
}

fn exchange_code(sim: &Shared, form: &[(String, String)]) -> Response {
    let Some(code) = param(form, "code") else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "The code parameter is required.");
    };
    let mut s = sim.lock();
    // A code is burnt by any exchange attempt, good or bad.
    let Some(grant) = s.codes.remove(code) else {
        super::grants::code_refused(&mut s, code);
        return invalid_grant("The authorization code is invalid, expired or has already been used.");
    };
    if grant.client_id != s.cfg.client_id || s.now() - grant.issued > CODE_LIFETIME {
        return invalid_grant("The authorization code is invalid, expired or has already been used.");
    }
    if param(form, "redirect_uri") != Some(grant.redirect_uri.as_str()) {
        return invalid_grant("The redirect_uri did not match the one used to obtain the authorization code.");
    }
    if let Some(challenge) = &grant.challenge {
        let Some(verifier) = param(form, "code_verifier") else {
            return invalid_grant("The code_verifier parameter is required.");
        };
        if super::s256_challenge(verifier) != *challenge {
            return invalid_grant("The code_verifier did not match the code_challenge.");
        }
    }
    s.stats.token_authorization_code += 1;
    let body = s.issue_tokens(None);
    super::grants::consented(&mut s, code, &body);
    json(StatusCode::OK, &body)
}

fn refresh(sim: &Shared, conn: &Conn, form: &[(String, String)]) -> Response {
    let Some(token) = param(form, "refresh_token") else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "The refresh_token parameter is required.");
    };
    let preserve = param(form, "preserve_refresh_token").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let mut s = sim.lock();
    let now = s.now();
    let Some(grant) = s.refresh.get(token).cloned() else {
        super::grants::refresh_refused(&mut s, token);
        return invalid_grant(BAD_REFRESH);
    };
    if grant.expires <= now {
        s.refresh.remove(token);
        return invalid_grant(BAD_REFRESH);
    }
    if grant.client_id != s.cfg.client_id {
        return invalid_grant(BAD_REFRESH);
    }
    if preserve {
        s.stats.token_refresh_preserve += 1;
        let full = now + s.cfg.refresh_token_ttl;
        let (expires, reported) = match s.cfg.preserved_refresh_expiry {
            PreservedRefreshExpiry::FixedReportsRemaining => (grant.expires, grant.expires),
            PreservedRefreshExpiry::FixedReportsFullLifetime => (grant.expires, full),
            PreservedRefreshExpiry::Sliding => (full, full),
        };
        if let Some(g) = s.refresh.get_mut(token) {
            g.expires = expires;
        }
        let body = s.issue_tokens(Some((token.to_owned(), reported)));
        super::grants::refreshed(&mut s, token, &body);
        return json(StatusCode::OK, &body);
    }
    s.refresh.remove(token);
    let body = s.issue_tokens(None);
    super::grants::refreshed(&mut s, token, &body);
    s.stats.token_refresh_rotate += 1;
    if s.drop_after_rotation > 0 {
        s.drop_after_rotation -= 1;
        s.stats.dropped += 1;
        conn.kill();
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    json(StatusCode::OK, &body)
}

#[cfg(test)]
mod tests {
    #[test]
    fn form_decoding_of_basic_parts() {
        assert_eq!(super::form_decode("a%2Bb%2Fc%3D+d").as_deref(), Some("a+b/c= d"));
        assert_eq!(super::form_decode("plain").as_deref(), Some("plain"));
        assert_eq!(super::form_decode("bad%2"), None);
        assert_eq!(super::form_decode("bad%zz"), None);
    }

    #[test]
    fn s256_matches_rfc_7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(super::super::s256_challenge(verifier), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }
}
