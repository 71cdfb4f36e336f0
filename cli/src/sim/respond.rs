//! Answers every handler builds: JSON and HTML bodies, Blackbaud's error shape, `Retry-After`,
//! and query/form parsing.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// A JSON response.
pub(crate) fn json(status: StatusCode, value: &serde_json::Value) -> Response {
    json_text(status, value.to_string())
}

/// A response whose body is already JSON text.
pub(crate) fn json_text(status: StatusCode, body: String) -> Response {
    let mut resp = (status, Body::from(body)).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    resp
}

/// Blackbaud's API error shape: `{"statusCode":N,"message":"..."}`.
pub(crate) fn api_error(status: StatusCode, message: &str) -> Response {
    json(status, &serde_json::json!({"statusCode": status.as_u16(), "message": message}))
}

/// An HTML error page.
pub(crate) fn html(status: StatusCode, title: &str, message: &str) -> Response {
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let body = format!(
        "<!DOCTYPE html>\n<html><head><title>{t}</title></head>\n<body><h1>{t}</h1><p>{m}</p></body></html>\n",
        t = esc(title),
        m = esc(message)
    );
    let mut resp = (status, Body::from(body)).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    resp
}

/// Adds a `Retry-After` header.
pub(crate) fn retry_after(mut resp: Response, secs: u64) -> Response {
    resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    resp
}

/// Parses a query string or form body; the first occurrence of a name wins.
pub(crate) fn pairs(s: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(s).into_owned().collect()
}

/// The first value of `name` in `pairs`.
pub(crate) fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}
