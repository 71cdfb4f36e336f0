//! HTTP as plain values: the core builds [`HttpRequest`]s and parses [`HttpResponse`]s; an
//! [`HttpClient`] (reqwest natively and in the browser, or a fake in tests) moves the bytes.

use std::time::Duration;

use url::Url;

use crate::host::MaybeSend;

/// Largest token-endpoint response body accepted (a token response is under 4 KiB).
pub const MAX_TOKEN_RESPONSE_BYTES: usize = 256 * 1024;
/// Largest SKY API response body accepted (a 5000-record page is a few MiB).
pub const MAX_API_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// HTTP methods the core uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET
    Get,
    /// POST
    Post,
    /// PUT
    Put,
    /// PATCH
    Patch,
    /// DELETE
    Delete,
}

impl Method {
    /// The method's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }

    /// Parses a method name (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_uppercase().as_str() {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            _ => return None,
        })
    }
}

/// A request to send. Header values may hold secrets, so `Debug` shows header names only.
#[derive(Clone)]
pub struct HttpRequest {
    /// Method.
    pub method: Method,
    /// Absolute URL.
    pub url: Url,
    /// Header name/value pairs.
    pub headers: Vec<(String, String)>,
    /// Body bytes (empty for none).
    pub body: Vec<u8>,
    /// Responses with a larger body fail with [`TransportError::TooLarge`].
    pub max_response_bytes: usize,
    /// Whether redirects may be followed (never for token calls).
    pub follow_redirects: bool,
    /// Give up after this long.
    pub timeout: Option<Duration>,
}

impl HttpRequest {
    /// A GET of `url` with the API body limit.
    pub fn get(url: Url) -> Self {
        Self {
            method: Method::Get,
            url,
            headers: Vec::new(),
            body: Vec::new(),
            max_response_bytes: MAX_API_RESPONSE_BYTES,
            follow_redirects: false,
            timeout: Some(Duration::from_secs(120)),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// The first value of a header (case-insensitive name).
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

impl std::fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("url", &redacted_url(&self.url))
            .field("headers", &names)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// A URL with its query values hidden, for logs and errors (queries may carry codes or tokens).
pub fn redacted_url(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_password(None).ok();
    shown.set_query(None);
    shown.set_fragment(None);
    let mut text = shown.to_string();
    // Built as text, not through `set_query`, which would percent-encode the "…" for display.
    if url.query().is_some() {
        let names: Vec<String> = url.query_pairs().map(|(k, _)| format!("{k}=…")).collect();
        text.push('?');
        text.push_str(&names.join("&"));
    }
    text
}

/// A received response.
#[derive(Clone)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Header name/value pairs (names lower-case).
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The media type of `Content-Type`, lower-case, without parameters.
    pub fn media_type(&self) -> Option<String> {
        self.header("content-type").map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
    }

    /// Whether the body is declared as JSON (`application/json` or `+json`).
    pub fn is_json(&self) -> bool {
        self.media_type().is_some_and(|m| m == "application/json" || m.ends_with("+json") || m == "text/json")
    }

    /// A short, safe description of the body for error messages: its type and first characters
    /// for non-JSON (an HTML error page, say). JSON bodies may hold tokens and are not quoted.
    pub fn body_excerpt(&self) -> String {
        let kind = self.media_type().unwrap_or_else(|| "no content type".into());
        // A JSON-shaped body is not quoted whatever its declared type: a token response served
        // as text/plain would otherwise put the tokens into the error message.
        let first = self.body.iter().find(|b| !b.is_ascii_whitespace());
        if self.is_json() || matches!(first, Some(b'{' | b'[')) {
            return format!("{kind}, {} bytes", self.body.len());
        }
        let text = crate::sanitize::server_text(&String::from_utf8_lossy(&self.body[..self.body.len().min(2048)]));
        let squeezed: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let excerpt: String = squeezed.chars().take(120).collect();
        format!("{kind}, {} bytes: {excerpt:?}", self.body.len())
    }
}

impl std::fmt::Debug for HttpResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpResponse")
            .field("status", &self.status)
            .field("content_type", &self.media_type())
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// The request never produced a complete response.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// Could not connect, or the connection dropped.
    #[error("network error talking to {host}: {message}")]
    Network {
        /// Host that was called.
        host: String,
        /// What went wrong (never holds secrets).
        message: String,
    },
    /// No connection could be made (refused, no route, DNS failure): nothing was sent.
    #[error("cannot connect to {host}: {message}")]
    Connect {
        /// Host that was called.
        host: String,
        /// What went wrong (never holds secrets).
        message: String,
    },
    /// The server took too long.
    #[error("timed out waiting for {host}")]
    Timeout {
        /// Host that was called.
        host: String,
    },
    /// The body exceeded the request's limit.
    #[error("response from {host} is larger than {limit} bytes; refusing to read it")]
    TooLarge {
        /// Host that was called.
        host: String,
        /// The limit.
        limit: usize,
    },
}

/// Sends HTTP requests.
#[async_trait::async_trait]
#[cfg(not(target_arch = "wasm32"))]
pub trait HttpClient: MaybeSend {
    /// Sends `request` and reads the whole (capped) response.
    async fn execute(&self, request: HttpRequest) -> Result<HttpResponse, TransportError>;
}

/// Sends HTTP requests.
#[async_trait::async_trait(?Send)]
#[cfg(target_arch = "wasm32")]
pub trait HttpClient: MaybeSend {
    /// Sends `request` and reads the whole (capped) response.
    async fn execute(&self, request: HttpRequest) -> Result<HttpResponse, TransportError>;
}

#[cfg(feature = "reqwest")]
mod reqwest_client;
#[cfg(feature = "reqwest")]
pub use reqwest_client::ReqwestClient;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_url_hides_query_values_and_passwords() {
        let u = Url::parse("https://u:pw@h/cb?code=SECRET&state=abc").unwrap();
        let s = redacted_url(&u);
        assert!(!s.contains("SECRET") && !s.contains("pw") && !s.contains("abc"));
        assert_eq!(s, "https://u@h/cb?code=…&state=…");
        assert_eq!(redacted_url(&Url::parse("https://h/p#frag").unwrap()), "https://h/p");
    }

    /// The committed Cargo.lock links full IDNA (`idna_adapter` 1.2, Unicode host names to
    /// punycode) into everything built natively, the CLI included. Only web/build.sh builds the
    /// consent page's wasm against an ASCII-only `idna_adapter` (1.0), with its own lock.
    #[test]
    #[cfg(not(target_arch = "wasm32"))]
    fn native_builds_map_unicode_host_names_to_punycode() {
        let u = Url::parse("https://Bücher.example/oauth2/token").unwrap();
        assert_eq!(u.host_str(), Some("xn--bcher-kva.example"));
        assert_eq!(Url::parse("https://straße.example/").unwrap().host_str(), Some("xn--strae-oqa.example"));
    }

    #[test]
    fn excerpt_quotes_html_but_not_json() {
        let html = HttpResponse {
            status: 502,
            headers: vec![("content-type".into(), "text/html; charset=utf-8".into())],
            body: b"<html>\n<body>Bad   gateway</body></html>".to_vec(),
        };
        assert!(html.body_excerpt().contains("Bad gateway"));
        let json = HttpResponse {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: br#"{"access_token":"tok"}"#.to_vec(),
        };
        assert!(json.is_json());
        assert!(!json.body_excerpt().contains("tok"));
    }
}
