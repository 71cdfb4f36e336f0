//! [`HttpClient`] over reqwest: hyper + rustls natively, the browser's `fetch` on wasm32.

use super::{HttpClient, HttpRequest, HttpResponse, Method, TransportError};

/// A reqwest-backed client. Clone is cheap (connection pools are shared).
#[derive(Debug, Clone)]
pub struct ReqwestClient {
    follow: reqwest::Client,
    no_follow: reqwest::Client,
}

impl ReqwestClient {
    /// A client with a `skysync/<version>` user agent.
    pub fn new() -> Result<Self, TransportError> {
        Ok(Self { follow: build(true)?, no_follow: build(false)? })
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn build(follow: bool) -> Result<reqwest::Client, TransportError> {
    let policy = if follow { reqwest::redirect::Policy::limited(5) } else { reqwest::redirect::Policy::none() };
    reqwest::Client::builder()
        .user_agent(concat!("skysync/", env!("CARGO_PKG_VERSION")))
        .redirect(policy)
        .connect_timeout(std::time::Duration::from_secs(20))
        .build()
        .map_err(|e| TransportError::Network { host: String::new(), message: e.to_string() })
}

#[cfg(target_arch = "wasm32")]
fn build(_follow: bool) -> Result<reqwest::Client, TransportError> {
    // The browser decides about redirects; `fetch` never exposes a cross-origin redirect anyway.
    reqwest::Client::builder()
        .build()
        .map_err(|e| TransportError::Network { host: String::new(), message: e.to_string() })
}

fn host_of(req: &HttpRequest) -> String {
    req.url
        .host_str()
        .map(|h| match req.url.port() {
            Some(p) => format!("{h}:{p}"),
            None => h.to_owned(),
        })
        .unwrap_or_default()
}

fn network(host: &str, e: reqwest::Error) -> TransportError {
    if e.is_timeout() {
        return TransportError::Timeout { host: host.to_owned() };
    }
    // reqwest's messages include the URL, whose query may carry secrets: strip it.
    // In a browser, `fetch` does not say whether a connection was made.
    #[cfg(not(target_arch = "wasm32"))]
    let is_connect = e.is_connect();
    #[cfg(target_arch = "wasm32")]
    let is_connect = false;
    let e = e.without_url();
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    if is_connect {
        return TransportError::Connect { host: host.to_owned(), message };
    }
    TransportError::Network { host: host.to_owned(), message }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl HttpClient for ReqwestClient {
    async fn execute(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let host = host_of(&request);
        let client = if request.follow_redirects { &self.follow } else { &self.no_follow };
        let method = match request.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Patch => reqwest::Method::PATCH,
            Method::Delete => reqwest::Method::DELETE,
        };
        let mut builder = client.request(method, request.url.clone());
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        if !request.body.is_empty() {
            builder = builder.body(request.body.clone());
        }
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(t) = request.timeout {
            builder = builder.timeout(t);
        }
        let response = builder.send().await.map_err(|e| network(&host, e))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_ascii_lowercase(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        let limit = request.max_response_bytes;
        if response.content_length().is_some_and(|n| n > limit as u64) {
            return Err(TransportError::TooLarge { host, limit });
        }
        let body = read_capped(response, &host, limit).await?;
        Ok(HttpResponse { status, headers, body })
    }
}

#[cfg(not(target_arch = "wasm32"))]
async fn read_capped(mut response: reqwest::Response, host: &str, limit: usize) -> Result<Vec<u8>, TransportError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| network(host, e))? {
        if body.len() + chunk.len() > limit {
            return Err(TransportError::TooLarge { host: host.to_owned(), limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(target_arch = "wasm32")]
async fn read_capped(response: reqwest::Response, host: &str, limit: usize) -> Result<Vec<u8>, TransportError> {
    let bytes = response.bytes().await.map_err(|e| network(host, e))?;
    if bytes.len() > limit {
        return Err(TransportError::TooLarge { host: host.to_owned(), limit });
    }
    Ok(bytes.to_vec())
}
