//! The core's [`HttpClient`] over the global `fetch` (browsers, workers, Node 18+), called
//! directly through web-sys.
//!
//! This replaces reqwest's wasm back end in the bindings: that one carries the `http` crate's
//! header parsing and its own request types, about a tenth of the consent page's module, to end
//! in the same `fetch` call. Redirects are the browser's (`fetch` never exposes a cross-origin
//! one); a request whose future is dropped is aborted.

use js_sys::{Array, Uint8Array};
use skysync_core::http::{HttpClient, HttpRequest, HttpResponse, TransportError};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, Headers, Request, RequestInit, Response};

#[wasm_bindgen]
extern "C" {
    /// The global `fetch`, looked up at each call (so a page or test may replace it).
    #[wasm_bindgen(js_name = fetch)]
    fn global_fetch(request: &Request) -> js_sys::Promise;
}

/// Sends requests with the global `fetch`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FetchClient;

/// Aborts the request when dropped before it finished (the future was cancelled).
struct AbortOnDrop(Option<AbortController>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            c.abort();
        }
    }
}

fn host_of(request: &HttpRequest) -> String {
    let host = request.url.host_str().unwrap_or_default();
    match request.url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    }
}

/// What a rejected promise or thrown value says: `TypeError: Failed to fetch`. The URL is not
/// part of it (its query may carry secrets).
fn js_message(value: &JsValue) -> String {
    match value.dyn_ref::<js_sys::Error>() {
        Some(e) => format!("{}: {}", String::from(e.name()), String::from(e.message())),
        None => value.as_string().unwrap_or_else(|| "unknown error".to_owned()),
    }
}

fn network(host: &str, what: &str, value: &JsValue) -> TransportError {
    TransportError::Network { host: host.to_owned(), message: format!("{what}: {}", js_message(value)) }
}

fn build(request: &HttpRequest, controller: Option<&AbortController>) -> Result<Request, JsValue> {
    let headers = Headers::new()?;
    for (name, value) in &request.headers {
        headers.append(name, value)?;
    }
    let init = RequestInit::new();
    init.set_method(request.method.as_str());
    init.set_headers(&headers);
    if !request.body.is_empty() {
        init.set_body(&Uint8Array::from(request.body.as_slice()));
    }
    if let Some(c) = controller {
        init.set_signal(Some(&c.signal()));
    }
    Request::new_with_str_and_init(request.url.as_str(), &init)
}

#[async_trait::async_trait(?Send)]
impl HttpClient for FetchClient {
    async fn execute(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let host = host_of(&request);
        let mut guard = AbortOnDrop(AbortController::new().ok());
        let js_request = build(&request, guard.0.as_ref()).map_err(|e| network(&host, "invalid request", &e))?;
        let answer =
            JsFuture::from(global_fetch(&js_request)).await.map_err(|e| network(&host, "error sending request", &e))?;
        let response: Response = answer.unchecked_into();
        let status = response.status();
        let mut headers = Vec::new();
        if let Ok(Some(entries)) = js_sys::try_iter(&response.headers()) {
            for entry in entries.flatten() {
                let pair: Array = entry.unchecked_into();
                if let (Some(k), Some(v)) = (pair.get(0).as_string(), pair.get(1).as_string()) {
                    headers.push((k.to_ascii_lowercase(), v));
                }
            }
        }
        let limit = request.max_response_bytes;
        let declared = headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(TransportError::TooLarge { host, limit });
        }
        let buffer = response.array_buffer().map_err(|e| network(&host, "error reading the body", &e))?;
        let buffer = JsFuture::from(buffer).await.map_err(|e| network(&host, "error reading the body", &e))?;
        guard.0 = None;
        let body = Uint8Array::new(&buffer);
        if body.length() as usize > limit {
            return Err(TransportError::TooLarge { host, limit });
        }
        Ok(HttpResponse { status, headers, body: body.to_vec() })
    }
}
