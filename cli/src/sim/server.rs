//! Binding, routing and CORS. Handlers live in their own modules and build their answers with
//! [`respond`](super::respond), so nothing imports this module back.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use skysync_core::catalog::CATALOG;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::net::{Conn, KillableListener};
use super::respond::json;
use super::state::Shared;
use super::{SimConfig, SimHandle, api, control, oauth};

/// Stops the server when dropped (the last [`SimHandle`] clone holds the last reference).
#[derive(Debug)]
pub(crate) struct StopGuard {
    tx: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl StopGuard {
    pub(crate) async fn stop(&self) {
        let _ = self.tx.send(true);
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(2), task).await.is_err() {
                abort.abort();
            }
        }
    }
}

impl Drop for StopGuard {
    fn drop(&mut self) {
        let _ = self.tx.send(true);
    }
}

pub(crate) async fn start(cfg: SimConfig) -> anyhow::Result<SimHandle> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", cfg.port))
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on 127.0.0.1:{}: {e}", cfg.port))?;
    let addr = listener.local_addr()?;
    let base_url = url::Url::parse(&format!("http://{addr}/"))?;
    let shared = Arc::new(Shared::new(base_url, cfg));
    let app = Router::new().fallback(dispatch).with_state(shared.clone());
    let (tx, mut rx) = watch::channel(false);
    let server = axum::serve(KillableListener(listener), app.into_make_service_with_connect_info::<Conn>())
        .with_graceful_shutdown(async move {
            let _ = rx.wait_for(|stop| *stop).await;
        });
    let task = tokio::spawn(async move {
        if let Err(e) = server.await {
            tracing::warn!("simulator server stopped: {e}");
        }
    });
    tracing::debug!("SKY simulator listening on {addr}");
    let guard = Arc::new(StopGuard { tx, task: Mutex::new(Some(task)) });
    Ok(SimHandle { shared, guard })
}

enum Route {
    Authorize,
    Token,
    /// A list: its catalog index, and the parent id of a per-parent list.
    Api(usize, Option<String>),
    Stats,
    Control,
    Index,
    NotFound,
}

fn route(path: &str) -> Route {
    match path {
        "/oauth/authorize" | "/authorization" => Route::Authorize,
        "/token" => Route::Token,
        "/_sim/stats" => Route::Stats,
        "/_sim/control" => Route::Control,
        "/" => Route::Index,
        p => match CATALOG.iter().position(|e| e.path == p) {
            Some(index) => Route::Api(index, None),
            None => child_route(p).map_or(Route::NotFound, |(index, id)| Route::Api(index, Some(id))),
        },
    }
}

/// A per-parent list's path (`/event/v1/events/{event_id}/participants`): its catalog index and
/// the parent id (one non-empty path segment; the simulator's ids need no decoding).
fn child_route(path: &str) -> Option<(usize, String)> {
    CATALOG.iter().enumerate().find_map(|(index, e)| {
        let (prefix, suffix) = e.path.split_once(e.parent?.placeholder)?;
        let id = path.strip_prefix(prefix)?.strip_suffix(suffix)?;
        (!id.is_empty() && !id.contains('/')).then(|| (index, id.to_owned()))
    })
}

async fn dispatch(State(sim): State<Arc<Shared>>, ConnectInfo(conn): ConnectInfo<Conn>, req: Request) -> Response {
    let preflight = req.method() == Method::OPTIONS;
    match route(req.uri().path()) {
        Route::Authorize => oauth::authorize(&sim, &req),
        Route::Token => {
            let cors = sim.lock().token_cors;
            let resp =
                if preflight { StatusCode::NO_CONTENT.into_response() } else { oauth::token(&sim, &conn, req).await };
            with_cors(resp, cors, preflight)
        }
        Route::Api(index, parent) => {
            let resp = if preflight {
                StatusCode::NO_CONTENT.into_response()
            } else {
                api::list(&sim, &conn, index, parent.as_deref(), req).await
            };
            with_cors(resp, true, preflight)
        }
        Route::Stats => {
            let stats = sim.lock().stats.clone();
            json(StatusCode::OK, &serde_json::to_value(stats).unwrap_or_default())
        }
        Route::Control => control::handle(&sim, req).await,
        Route::Index => json(
            StatusCode::OK,
            &serde_json::json!({
                "simulator": "skysync SKY API simulator",
                "authorize_url": sim.base_url.join("oauth/authorize").ok(),
                "token_url": sim.base_url.join("token").ok(),
                "api_url": sim.base_url,
                "entities": CATALOG.iter().map(|e| e.path).collect::<Vec<_>>(),
            }),
        ),
        Route::NotFound => {
            json(StatusCode::NOT_FOUND, &serde_json::json!({"statusCode": 404, "message": "Resource not found"}))
        }
    }
}

fn with_cors(mut resp: Response, enabled: bool, preflight: bool) -> Response {
    if !enabled {
        return resp;
    }
    let h = resp.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("retry-after"));
    if preflight {
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, PUT, PATCH, DELETE, OPTIONS"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type, bb-api-subscription-key, accept"),
        );
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    }
    resp
}
