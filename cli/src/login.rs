//! Consent: the authorization URL, the loopback listener or the pasted redirect, and the code
//! exchange whose tokens go straight into the store.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use skysync_core::authorize::{CallbackError, PendingAuthorization, parse_callback};
use skysync_core::exchange::{ExchangeError, exchange_code};
use skysync_core::host::{Clock, SystemClock};
use skysync_core::secret::{AuthorizationCode, PkceVerifier};
use skysync_core::store::{StoreError, TokenStore};
use skysync_core::{SessionError, TokenSet};
use tokio::sync::mpsc;
use url::Url;

use crate::context::Context;

/// What may be replaced when new tokens are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replace {
    /// Whatever is stored (`login`: a person just consented for this profile).
    Always,
    /// Not tokens that still work for another environment (`import` without `--force`).
    SameEnvironment,
}

/// Stores `tokens` (the caller holds the store lock), keeping the previous file as the backup.
/// With [`Replace::SameEnvironment`], refuses to replace a refresh token that has not expired
/// and belongs to another environment: it would be gone after the next save.
pub async fn store_tokens(ctx: &Context, tokens: &TokenSet, replace: Replace) -> anyhow::Result<()> {
    let store = ctx.store();
    // An unreadable store is what a new consent repairs (`replace` moves it aside), so only
    // readable tokens are protected here.
    if let Ok(Some(current)) = store.load().await
        && !current.tokens.may_replace(tokens, SystemClock.now())
    {
        let (old, new) = (&current.tokens.identity, &tokens.identity);
        if replace == Replace::SameEnvironment {
            return Err(crate::exit::UsageError(format!(
                "profile `{}` holds working tokens for {}, and these are for {}; nothing was changed. \
                 Import into another profile (`skysync --profile NAME import …`), or pass --force to replace them",
                ctx.profile(),
                old.environment_display(),
                new.environment_display()
            ))
            .into());
        }
        ctx.output().note(format_args!(
            "note: replacing the tokens for {} (kept as {} until the next save)",
            old.environment_display(),
            store.backup_path().display()
        ));
    }
    store.replace(tokens).await?;
    Ok(())
}

/// Exchanges an authorization code and saves the tokens (under the store lock, replacing what
/// was stored). Returns the new token set.
pub async fn exchange_and_store(
    ctx: &Context,
    code: AuthorizationCode,
    verifier: Option<PkceVerifier>,
    redirect_uri: &Url,
) -> anyhow::Result<TokenSet> {
    exchange_and_replace(ctx, code, verifier, redirect_uri, Replace::Always).await
}

/// [`exchange_and_store`], replacing only what `replace` allows (see [`store_tokens`]).
pub async fn exchange_and_replace(
    ctx: &Context,
    code: AuthorizationCode,
    verifier: Option<PkceVerifier>,
    redirect_uri: &Url,
    replace: Replace,
) -> anyhow::Result<TokenSet> {
    if verifier.is_none() {
        ctx.require_client_secret()?;
    }
    let oauth = ctx.settings().oauth();
    tracing::info!(url = %skysync_core::http::redacted_url(&oauth.endpoints.token), "exchanging the authorization code");
    let http = ctx.http()?;
    let tokens = exchange_code(http.as_ref(), &SystemClock, &oauth, &code, verifier.as_ref(), redirect_uri)
        .await
        .map_err(|e| match e {
            ExchangeError::Unreachable(e) => anyhow::Error::from(SessionError::from(e)),
            ExchangeError::Token(e) => SessionError::from(e).into(),
            ExchangeError::NoRefreshToken(e) => e.into(),
        })?;
    let store = ctx.store();
    let _lock = store.lock().await.map_err(SessionError::from)?;
    store_tokens(ctx, &tokens, replace).await.map_err(|e| match e.downcast::<StoreError>() {
        Ok(e) => anyhow::Error::from(SessionError::SaveFailed(e))
            .context("the new tokens were received but not saved; consent again with `skysync login`"),
        Err(e) => e,
    })?;
    Ok(tokens)
}

/// Where the browser is sent back to: a loopback address to listen on.
fn listen_addr(redirect_uri: &Url) -> anyhow::Result<SocketAddr> {
    anyhow::ensure!(
        redirect_uri.scheme() == "http",
        "redirect_uri {redirect_uri} is not an http:// loopback address, so `skysync login` cannot listen for it; use `skysync login --manual`"
    );
    let Some(ip) = crate::loopback::loopback_ip(redirect_uri.host()) else {
        anyhow::bail!(
            "redirect_uri {redirect_uri} is not a loopback address (localhost or 127.0.0.1), so `skysync login` cannot listen for it; use `skysync login --manual`"
        )
    };
    let port = redirect_uri.port_or_known_default().unwrap_or(80);
    Ok(SocketAddr::new(ip, port))
}

const PAGE_OK: &str = "<!doctype html><html><head><meta charset=\"utf-8\"><title>skysync</title></head>\
<body><h1>skysync is connected</h1>\
<p>Consent received. You may close this window and return to the terminal.</p></body></html>";

fn page_error(message: &str) -> String {
    let escaped = message.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>skysync</title></head>\
<body><h1>skysync login failed</h1><p>{escaped}</p>\
<p>Return to the terminal for details.</p></body></html>"
    )
}

/// The callback page's headers: it runs nothing, is never cached (its URL held the code), and
/// sends no referrer onwards.
fn callback_headers() -> [(axum::http::HeaderName, &'static str); 4] {
    use axum::http::header;
    [
        (header::CONTENT_SECURITY_POLICY, "default-src 'none'"),
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ]
}

/// The loopback sockets the browser may come back on.
#[derive(Debug)]
pub struct CallbackListener {
    /// The redirect URI's address first; `[::1]` too for `localhost` (see [`crate::loopback`]).
    sockets: Vec<tokio::net::TcpListener>,
}

impl CallbackListener {
    /// `configured` as the browser must be sent back to it: unchanged, except that port 0 (any
    /// free port) becomes the port actually bound. With port 0 nobody else can take the port
    /// between choosing and binding it, but the authorization server must accept any loopback port
    /// (RFC 8252 §7.3; the simulator with the redirect registered after the fact, not Blackbaud,
    /// which matches registered redirect URIs exactly).
    pub fn redirect_uri(&self, configured: &Url) -> anyhow::Result<Url> {
        let mut uri = configured.clone();
        if configured.port() == Some(0) {
            let port = self.sockets.first().context("no listener")?.local_addr()?.port();
            uri.set_port(Some(port)).map_err(|()| anyhow::anyhow!("redirect_uri {configured} cannot take a port"))?;
        }
        Ok(uri)
    }
}

/// Binds the loopback listener for `redirect_uri`. Done before the URL is shown, so a fast
/// browser cannot arrive before anyone listens. With a `localhost` redirect URI both 127.0.0.1
/// and `[::1]` are bound, or the login stops (see [`crate::loopback`]).
pub async fn bind_listener(redirect_uri: &Url) -> anyhow::Result<CallbackListener> {
    let addr = listen_addr(redirect_uri)?;
    let both = matches!(redirect_uri.host(), Some(url::Host::Domain(d)) if d.eq_ignore_ascii_case("localhost"));
    let fixes = format!(
        "The browser's return to redirect_uri {} could reach whoever holds it. Stop whatever holds the port, \
         or run `skysync login --manual` and paste the address the browser is sent to, \
         or register another loopback redirect_uri with the application and set SKYSYNC_REDIRECT_URI",
        skysync_core::http::redacted_url(redirect_uri)
    );
    let sockets = crate::loopback::bind(addr.ip(), addr.port(), both, &fixes).await?;
    Ok(CallbackListener { sockets })
}

/// Waits on `listener` for the browser's redirect and returns the code.
pub async fn receive_callback(
    listener: CallbackListener,
    pending: &PendingAuthorization,
    timeout: Duration,
) -> anyhow::Result<AuthorizationCode> {
    use axum::extract::{RawQuery, State};
    use axum::http::{HeaderMap, StatusCode, header};
    use axum::response::{Html, IntoResponse, Response};

    let addr = listener.sockets.first().context("no listener")?.local_addr()?;
    let path = pending.redirect_uri.path().to_owned();
    let (tx, mut rx) = mpsc::channel::<Result<AuthorizationCode, CallbackError>>(4);
    #[derive(Clone)]
    struct Shared {
        tx: mpsc::Sender<Result<AuthorizationCode, CallbackError>>,
        state: skysync_core::pkce::CsrfState,
        host: String,
        port: u16,
    }
    async fn callback(State(s): State<Shared>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        if !crate::loopback::host_allowed(host, &s.host, s.port) {
            tracing::warn!("ignored a request for another host name (a DNS rebinding attempt?)");
            return (StatusCode::MISDIRECTED_REQUEST, callback_headers(), "wrong host\n").into_response();
        }
        let result = parse_callback(&format!("?{}", q.unwrap_or_default()), &s.state, false);
        let reply = match &result {
            Ok(_) => (StatusCode::OK, callback_headers(), Html(PAGE_OK.to_owned())).into_response(),
            Err(e) => (StatusCode::BAD_REQUEST, callback_headers(), Html(page_error(&e.to_string()))).into_response(),
        };
        // A stale or forged redirect must not end the login: keep waiting for the real one.
        if !matches!(result, Err(CallbackError::StateMismatch)) {
            let _ = s.tx.send(result).await;
        } else {
            tracing::warn!("ignored a redirect whose state does not match this login attempt");
        }
        reply
    }
    let app = axum::Router::new().route(&path, axum::routing::get(callback)).with_state(Shared {
        tx,
        state: pending.state.clone(),
        host: pending.redirect_uri.host_str().unwrap_or("localhost").to_owned(),
        port: addr.port(),
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let servers: Vec<_> = listener
        .sockets
        .into_iter()
        .map(|socket| {
            let mut stop = stop_rx.clone();
            let app = app.clone();
            tokio::spawn(async move {
                let _ = axum::serve(socket, app)
                    .with_graceful_shutdown(async move {
                        let _ = stop.wait_for(|stopped| *stopped).await;
                    })
                    .await;
            })
        })
        .collect();
    tracing::info!(%addr, path, "listening for the redirect");
    let outcome = tokio::time::timeout(timeout, rx.recv()).await;
    // Give the browser its page before the listener goes away.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(2), futures::future::join_all(servers)).await;
    match outcome {
        Err(_) => anyhow::bail!(
            "timed out after {}s waiting for the browser to return to {}; run `skysync login` again (use --timeout SECS for more time, or --manual on a machine without a browser)",
            timeout.as_secs(),
            skysync_core::http::redacted_url(&pending.redirect_uri)
        ),
        Ok(None) => anyhow::bail!("the redirect listener stopped unexpectedly"),
        Ok(Some(result)) => Ok(result?),
    }
}

/// Reads the pasted redirect URL (or bare code) from stdin.
pub async fn read_pasted(pending: &PendingAuthorization, timeout: Duration) -> anyhow::Result<AuthorizationCode> {
    let read = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|n| (n, line))
    });
    let (n, line) = tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| anyhow::anyhow!("timed out after {}s waiting for the pasted URL", timeout.as_secs()))?
        .context("reading stdin")?
        .context("reading stdin")?;
    anyhow::ensure!(n > 0, "nothing was pasted (stdin closed); paste the URL the browser was redirected to");
    Ok(parse_callback(&line, &pending.state, true)?)
}

/// Opens `url` in the desktop browser. Failure is only worth a hint.
pub fn open_browser(url: &Url) -> bool {
    let program = if cfg!(target_os = "macos") {
        "open"
    } else if cfg!(windows) {
        "explorer"
    } else {
        "xdg-open"
    };
    std::process::Command::new(program)
        .arg(url.as_str())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .is_ok()
}
