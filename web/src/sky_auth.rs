//! The `SkyAuth` class: the JavaScript face of the core's consent, session and API client.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use serde::Serialize;
use skysync_core::api::ApiError;
use skysync_core::api::{ApiClient, DEFAULT_PACE};
use skysync_core::authorize::{parse_callback, start_authorization};
use skysync_core::bundle::CODE_BUNDLE_LIFETIME;
#[cfg(any(feature = "app-api", feature = "app-store"))]
use skysync_core::bundle::{BundleContent, TokenBundle};
use skysync_core::bundle_seal::{Recipient, seal};
use skysync_core::config::OAuthConfig;
use skysync_core::exchange::{ExchangeError, exchange_code};
use skysync_core::host::{Clock, OsEntropy, Runtime};
use skysync_core::http::{HttpClient, HttpResponse, Method};
use skysync_core::session::{Session, SessionParts};
use skysync_core::store::{MemoryStore, TokenStore};
use skysync_core::token_set::{RenewalPolicy, TokenSet};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::browser_env::{BrowserClock, BrowserRuntime};
use crate::consent::{ReceivedCode, TokenInfo, bundle_for, is_redirect, to_rfc3339};
use crate::error::{ErrorKind, Failure};
use crate::fetch_client::FetchClient;
#[cfg(feature = "app-store")]
use crate::js_store::{AppStore, JsTokenStore};
use crate::pending_store::{Pending, PendingStore};
use crate::web_config::WebConfig;

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &str = r#"
/** The configuration object of `new SkyAuth(config)`. Empty strings count as absent; unknown
 * fields are an error. */
export interface SkyAuthConfig {
  /** The "Application ID". */
  clientId: string;
  /** The "Application secret" of a confidential application. Sent only to the token endpoint,
   * never stored by SkyAuth. */
  clientSecret?: string;
  /** The redirect URI registered with the application (exact match). */
  redirectUri: string;
  /** Default: https://app.blackbaud.com/oauth/authorize */
  authorizeUrl?: string;
  /** Default: https://oauth2.sky.blackbaud.com/token */
  tokenUrl?: string;
  /** Default: https://api.sky.blackbaud.com/ */
  apiUrl?: string;
  /** Bb-Api-Subscription-Key; needed only by apiGet(). */
  subscriptionKey?: string;
  /** Restricts consent to one environment. */
  environmentId?: string;
  /** Client authentication at the token endpoint. Default: "basic" with a secret, else "none". */
  clientAuth?: "basic" | "basic-form-encoded" | "body" | "none";
  /** Prefix of the sessionStorage keys. Default: "skysync.". */
  storagePrefix?: string;
}

/** Who consented to which environment, and until when the tokens last (RFC 3339 instants). */
export interface TokenInfo {
  clientId: string;
  /** "Environment name (id)". */
  environment: string;
  /** "Given Family <email>". */
  user: string;
  environmentId?: string;
  environmentName?: string;
  legalEntityName?: string;
  email?: string;
  mode?: string;
  accessExpiresAt?: string;
  refreshExpiresAt: string;
  consentedAt: string;
  /** Only when asked for (includeSecrets). */
  accessToken?: string;
  /** Only when asked for (includeSecrets). */
  refreshToken?: string;
}

/** The stable `name` of every Error a SkyAuth method throws or rejects with (switch on
 * `err.name`; `err.message` is for people and may change):
 * - ConfigError: the configuration is incomplete or invalid, or a call needs a setting it lacks.
 * - StorageError: sessionStorage is unavailable or holds unreadable data.
 * - NoPendingAuthorizationError: no `authorizeUrl()` in this tab, or its redirect was handled.
 * - StateMismatchError: the redirect's `state` is not the one sent (stale or forged).
 * - ConsentDeniedError: the user (or Blackbaud) declined consent.
 * - InvalidRedirectError: the redirect carries no code, or cannot be read.
 * - ConsentRequiredError: invalid_grant, or the refresh token expired: consent again.
 * - InvalidClientError: invalid_client: wrong application ID or secret.
 * - TokenEndpointUnreachableError: the browser could not read the token endpoint (CORS,
 *   network, CSP); after `handleRedirect`, `exportBundle()` gives an authorization-code bundle.
 * - TokenEndpointError: the token endpoint answered with an error or not a token response.
 * - NoRefreshTokenError: the token response has no refresh token (a public application).
 * - NotLoggedInError: no tokens yet: consent first (or `restoreBundle`).
 * - SubscriptionKeyError: the SKY API refused the subscription key.
 * - UnauthorizedError: the SKY API refused a freshly refreshed access token.
 * - RateLimitedError: 429s outlasted the retry budget.
 * - QuotaExhaustedError: the daily call quota is used up.
 * - ApiUnavailableError: the SKY API could not be reached, or kept failing with 5xx.
 * - ApiError: any other SKY API failure.
 * - BundleError: a token bundle that cannot be used.
 * - RotationLostError: a rotated refresh token was lost (its answer never arrived, or the token
 *   store could not save it): the stored one no longer works. When the store's save failed,
 *   `exportBundle()` of the same object still returns the new tokens: keep them, or consent again.
 * - BookmarkError: `SkySync.run` was given a bookmark it did not hand out for that entity. */
export type SkyErrorName =
  | "ConfigError" | "StorageError" | "NoPendingAuthorizationError" | "StateMismatchError"
  | "ConsentDeniedError" | "InvalidRedirectError" | "ConsentRequiredError" | "InvalidClientError"
  | "TokenEndpointUnreachableError" | "TokenEndpointError" | "NoRefreshTokenError"
  | "NotLoggedInError" | "SubscriptionKeyError" | "UnauthorizedError" | "RateLimitedError"
  | "QuotaExhaustedError" | "ApiUnavailableError" | "ApiError" | "BundleError" | "RotationLostError"
  | "BookmarkError";
"#;

/// Where the live tokens are kept: in memory (the default), or in the app's store.
enum Kept {
    Memory(Arc<MemoryStore>),
    #[cfg(feature = "app-store")]
    App(Arc<AppStore>),
}

/// Tokens obtained in this tab, with the session and API client over them.
struct Live {
    store: Kept,
    /// `accessToken()` reads it; without the feature only the API client (which shares it) does.
    #[cfg_attr(not(feature = "app-api"), expect(dead_code, reason = "accessToken() is an app-api method"))]
    session: Session,
    api: Option<ApiClient>,
}

/// What a `SkyAuth` object holds; shared with the `SkySync` objects made from it.
pub(crate) struct Inner {
    oauth: OAuthConfig,
    config: WebConfig,
    http: Arc<dyn HttpClient>,
    clock: Arc<dyn Clock>,
    runtime: Arc<dyn Runtime>,
    pending: PendingStore,
    live: RefCell<Option<Live>>,
    received: RefCell<Option<ReceivedCode>>,
}

/// Consent, tokens and SKY API calls from a web page.
///
/// ```js
/// const auth = new SkyAuth({ clientId, redirectUri: location.origin + location.pathname });
/// if (SkyAuth.isRedirect(location.href)) {
///   const info = await auth.handleRedirect(location.href);
///   history.replaceState(null, "", location.pathname);   // the code leaves the address bar
/// } else {
///   location.assign(auth.authorizeUrl());
/// }
/// ```
#[wasm_bindgen]
pub struct SkyAuth {
    inner: Rc<Inner>,
}

impl std::fmt::Debug for SkyAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SkyAuth").field("client_id", &self.inner.oauth.client_id).finish_non_exhaustive()
    }
}

type JsResult<T> = Result<T, JsValue>;

/// A Rust value as a JavaScript one, through its JSON text and the engine's `JSON.parse`: the
/// JSON serializer is linked anyway (bundles are JSON), a second converter is not.
pub(crate) fn to_js<T: Serialize>(value: &T) -> Result<JsValue, Failure> {
    let text = serde_json::to_string(value)
        .map_err(|_| Failure::new(ErrorKind::Api, "could not convert a value for JavaScript"))?;
    js_sys::JSON::parse(&text).map_err(|_| Failure::new(ErrorKind::Api, "could not convert a value for JavaScript"))
}

/// A SKY API answer as a JavaScript value, parsed by the JavaScript engine's own `JSON.parse`
/// (the same rules as the core's `json_body`: an empty answer is `null`, a body not declared as
/// JSON is refused). Parsing into `serde_json::Value` and converting that would link a second
/// JSON value model into the page for no gain.
fn parse_json_body(response: &HttpResponse, path: &str) -> Result<JsValue, Failure> {
    let url = path.split('?').next().unwrap_or(path).to_owned();
    let malformed = |problem: String| Failure::from(ApiError::Malformed { url: url.clone(), problem });
    if response.status == 204 || response.body.is_empty() {
        return Ok(JsValue::NULL);
    }
    if !response.is_json() {
        return Err(malformed(format!("expected JSON, got {}", response.body_excerpt())));
    }
    let text = std::str::from_utf8(&response.body).map_err(|_| malformed("invalid JSON: not UTF-8".to_owned()))?;
    js_sys::JSON::parse(text).map_err(|e| {
        let why = e.dyn_ref::<js_sys::Error>().map(|e| String::from(e.message())).unwrap_or_default();
        malformed(format!("invalid JSON: {why}"))
    })
}

fn promise<F>(future: F) -> js_sys::Promise
where
    F: std::future::Future<Output = Result<JsValue, Failure>> + 'static,
{
    future_to_promise(async move { future.await.map_err(JsValue::from) })
}

#[wasm_bindgen]
impl SkyAuth {
    /// Checks `config` (a `SkyAuthConfig`) and prepares a client. Throws `ConfigError`.
    #[wasm_bindgen(constructor)]
    pub fn new(#[wasm_bindgen(unchecked_param_type = "SkyAuthConfig")] config: JsValue) -> JsResult<SkyAuth> {
        // Through JSON text, so that serde sees (and rejects) unknown fields.
        let text = js_sys::JSON::stringify(&config)
            .ok()
            .and_then(|s| s.as_string())
            .ok_or_else(|| Failure::new(ErrorKind::Config, "the configuration must be a plain object"))?;
        let config = WebConfig::from_json(&text)?;
        let oauth = config.oauth()?;
        config.api()?;
        let pending = PendingStore::new(config.storage_prefix());
        Ok(SkyAuth {
            inner: Rc::new(Inner {
                oauth,
                config,
                http: Arc::new(FetchClient),
                clock: Arc::new(BrowserClock),
                runtime: Arc::new(BrowserRuntime),
                pending,
                live: RefCell::new(None),
                received: RefCell::new(None),
            }),
        })
    }

    /// Whether `url` is a redirect back from the consent page (`state` plus `code` or `error`).
    #[wasm_bindgen(js_name = isRedirect)]
    pub fn is_redirect(url: &str) -> bool {
        is_redirect(url)
    }

    /// Seals a bundle (the JSON text of `exportBundle()`) to the recipient of a link printed by
    /// `skysync import --prepare` (its fragment's `skysync-recipient` and `skysync-nonce`), so only
    /// that machine's one-time key opens it (HPKE, X25519 + ChaCha20-Poly1305). Returns the sealed
    /// bundle's JSON text. Throws `BundleError` for a malformed recipient.
    #[wasm_bindgen(js_name = sealBundle)]
    pub fn seal_bundle(bundle: &str, recipient: &str, nonce: &str) -> JsResult<String> {
        let recipient = Recipient::parse(recipient, nonce).map_err(Failure::from)?;
        Ok(seal(bundle.as_bytes(), &recipient).map_err(Failure::from)?)
    }

    /// The short name of a recipient's key (what `skysync import --prepare` prints), so the admin
    /// can compare the two. Throws `BundleError` for a malformed recipient.
    #[wasm_bindgen(js_name = recipientFingerprint)]
    pub fn recipient_fingerprint(recipient: &str, nonce: &str) -> JsResult<String> {
        Ok(Recipient::parse(recipient, nonce).map_err(Failure::from)?.fingerprint())
    }

    /// The `name` of every error kind, in a stable order.
    #[wasm_bindgen(js_name = errorNames, unchecked_return_type = "SkyErrorName[]")]
    pub fn error_names() -> Vec<String> {
        ErrorKind::ALL.iter().map(|k| k.name().to_owned()).collect()
    }

    /// Starts a consent: a fresh PKCE verifier and `state` go to `sessionStorage`, and the
    /// returned URL (which holds neither secret) is where to send the browser.
    #[wasm_bindgen(js_name = authorizeUrl)]
    pub fn authorize_url(&self) -> JsResult<String> {
        let started = start_authorization(&self.inner.oauth, &OsEntropy);
        let url = started.url.to_string();
        let pending = Pending { client_id: self.inner.oauth.client_id.clone(), authorization: started };
        self.inner.pending.save(&pending)?;
        Ok(url)
    }

    /// Whether `authorizeUrl()` was called in this tab and its redirect not yet handled.
    #[wasm_bindgen(js_name = hasPendingAuthorization)]
    pub fn has_pending_authorization(&self) -> bool {
        self.inner.pending.has_pending()
    }

    /// Takes the redirect back from the consent page: checks `state`, exchanges the code through
    /// `fetch` and resolves to a `TokenInfo` (with the tokens only when `includeSecrets`).
    /// When the token endpoint cannot be reached from the browser, rejects with
    /// `TokenEndpointUnreachableError` and keeps the code, so `exportBundle()` returns an
    /// authorization-code bundle (to import within 5 minutes).
    #[wasm_bindgen(js_name = handleRedirect, unchecked_return_type = "Promise<TokenInfo>")]
    pub fn handle_redirect(
        &self,
        url: String,
        #[wasm_bindgen(js_name = includeSecrets)] include_secrets: Option<bool>,
    ) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move { inner.handle_redirect(&url, include_secrets.unwrap_or(false)).await })
    }

    /// The token bundle (JSON text) for `skysync import`: the tokens after a successful exchange,
    /// else the authorization code kept by a failed one. Throws `NotLoggedInError` when there is
    /// neither.
    #[wasm_bindgen(js_name = exportBundle)]
    pub fn export_bundle(&self) -> JsResult<String> {
        let now = self.inner.clock.now();
        let received = self.inner.received.borrow();
        Ok(bundle_for(self.inner.tokens(), received.as_ref(), now)?.to_json())
    }

    /// When the kept authorization code expires (RFC 3339), if `exportBundle()` would export one.
    #[wasm_bindgen(getter, js_name = codeExpiresAt)]
    pub fn code_expires_at(&self) -> Option<String> {
        if self.inner.tokens().is_some() {
            return None;
        }
        self.inner.received.borrow().as_ref().map(|c| to_rfc3339(c.expires_at()))
    }

    /// GETs a SKY API path (`/constituent/v1/constituents?limit=1`) or a `next_link`, with the
    /// subscription key and a bearer token; 401 refreshes once, 429 waits, quota 403 stops.
    /// Resolves to the parsed JSON.
    #[wasm_bindgen(js_name = apiGet, unchecked_return_type = "Promise<any>")]
    pub fn api_get(&self, path: String) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move {
            let api = inner.api()?;
            let response = api.send(Method::Get, &path, None).await?;
            parse_json_body(&response, &path)
        })
    }

    /// Removes every `sessionStorage` key under the prefix (the pending consent, and whatever the
    /// host page saved there) and forgets a kept authorization code. Returns how many keys went.
    #[wasm_bindgen(js_name = clearStorage)]
    pub fn clear_storage(&self) -> JsResult<u32> {
        *self.inner.received.borrow_mut() = None;
        Ok(self.inner.pending.clear_all()?)
    }
}

/// What apps use and the consent page does not (feature `app-api`, on by default and in the npm
/// package; web/build.sh builds the page's wasm without it, which keeps the bundle parser out).
#[cfg(feature = "app-api")]
#[wasm_bindgen]
impl SkyAuth {
    /// A valid access token, refreshed when due (single-flight: concurrent callers share one
    /// refresh).
    #[wasm_bindgen(js_name = accessToken, unchecked_return_type = "Promise<string>")]
    pub fn access_token(&self) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move {
            let session = inner.session()?;
            let token = session.access_token().await?;
            Ok(JsValue::from_str(token.secret()))
        })
    }

    /// The current tokens' summary, or `undefined` before a consent.
    #[wasm_bindgen(js_name = tokenInfo, unchecked_return_type = "TokenInfo | undefined")]
    pub fn token_info(
        &self,
        #[wasm_bindgen(js_name = includeSecrets)] include_secrets: Option<bool>,
    ) -> JsResult<JsValue> {
        match self.inner.tokens() {
            Some(t) => Ok(to_js(&TokenInfo::of(&t, include_secrets.unwrap_or(false)))?),
            None => Ok(JsValue::UNDEFINED),
        }
    }

    /// Loads tokens from a refresh-token bundle (for apps that keep one). Throws `BundleError`.
    #[wasm_bindgen(js_name = restoreBundle, unchecked_return_type = "TokenInfo")]
    pub fn restore_bundle(&self, json: &str) -> JsResult<JsValue> {
        let bundle = TokenBundle::parse(json.as_bytes()).map_err(Failure::from)?;
        bundle.validate(&self.inner.oauth.client_id, self.inner.clock.now()).map_err(Failure::from)?;
        let BundleContent::RefreshToken { tokens } = bundle.content else {
            return Err(Failure::new(
                ErrorKind::Bundle,
                "an authorization-code bundle must be exchanged by `skysync import`, not restored",
            )
            .into());
        };
        self.inner.install(*tokens.clone());
        Ok(to_js(&TokenInfo::of(&tokens, false))?)
    }
}

/// For `SkySync` (feature `sync`).
#[cfg(feature = "sync")]
impl SkyAuth {
    /// What this object holds, shared.
    pub(crate) fn shared(&self) -> Rc<Inner> {
        self.inner.clone()
    }
}

/// The npm package's extras (feature `app-store`; the consent page is built without them).
#[cfg(feature = "app-store")]
#[wasm_bindgen]
impl SkyAuth {
    /// `new SkyAuth(config)` whose tokens are loaded from and saved to the app's `store` (a
    /// `SkyTokenStore`: compare-and-swap), with the CLI's policy: routine refreshes keep the
    /// refresh token, one inside the renewal window rotates it (saving the intent first), and
    /// concurrent callers share one refresh. Seed the store with `SkyAuth.storeRecord(bundle)`.
    #[wasm_bindgen(js_name = withStore)]
    pub fn with_store(
        #[wasm_bindgen(unchecked_param_type = "SkyAuthConfig")] config: JsValue,
        store: JsTokenStore,
    ) -> JsResult<SkyAuth> {
        let auth = Self::new(config)?;
        // The core shares stores as `Arc<dyn TokenStore>`; wasm has one thread.
        #[allow(clippy::arc_with_non_send_sync)]
        let store = Arc::new(AppStore::new(store));
        auth.inner.keep(Kept::App(store));
        Ok(auth)
    }

    /// The record to put in a `SkyTokenStore` (its `json`) for the tokens of a refresh-token
    /// bundle (`skysync export`, or the consent page's). Throws `BundleError`.
    #[wasm_bindgen(js_name = storeRecord)]
    pub fn store_record(bundle: &str) -> JsResult<String> {
        let bundle = TokenBundle::parse(bundle.as_bytes()).map_err(Failure::from)?;
        let BundleContent::RefreshToken { tokens } = bundle.content else {
            return Err(Failure::new(
                ErrorKind::Bundle,
                "an authorization-code bundle must be exchanged by `skysync import`",
            )
            .into());
        };
        serde_json::to_string(&tokens).map_err(|e| Failure::new(ErrorKind::Bundle, e.to_string()).into())
    }
}

impl Inner {
    fn tokens(&self) -> Option<TokenSet> {
        let live = self.live.borrow();
        let snapshot = match &live.as_ref()?.store {
            Kept::Memory(store) => store.snapshot(),
            #[cfg(feature = "app-store")]
            Kept::App(store) => store.snapshot(),
        };
        snapshot.map(|v| v.tokens)
    }

    #[cfg(feature = "app-api")]
    fn session(&self) -> Result<Session, Failure> {
        self.live.borrow().as_ref().map(|l| l.session.clone()).ok_or_else(not_logged_in)
    }

    pub(crate) fn api(&self) -> Result<ApiClient, Failure> {
        let live = self.live.borrow();
        let live = live.as_ref().ok_or_else(not_logged_in)?;
        live.api
            .clone()
            .ok_or_else(|| Failure::new(ErrorKind::Config, "apiGet needs subscriptionKey in the configuration"))
    }

    /// The SKY API base URL.
    #[cfg(feature = "sync")]
    pub(crate) fn api_base(&self) -> Result<url::Url, Failure> {
        self.config.api()?.map(|c| c.base).ok_or_else(|| {
            Failure::new(ErrorKind::Config, "SkySync needs subscriptionKey in the SkyAuth configuration")
        })
    }

    /// The browser's (or Node's) clock.
    #[cfg(feature = "sync")]
    pub(crate) fn now(&self) -> time::OffsetDateTime {
        self.clock.now()
    }

    /// Replaces the tokens (and the session over them).
    fn install(&self, tokens: TokenSet) {
        self.keep(Kept::Memory(Arc::new(MemoryStore::with(tokens))));
    }

    /// A session (and API client) over `store`.
    fn keep(&self, store: Kept) {
        let dyn_store: Arc<dyn TokenStore> = match &store {
            Kept::Memory(s) => s.clone(),
            #[cfg(feature = "app-store")]
            Kept::App(s) => s.clone(),
        };
        let session = Session::new(SessionParts {
            oauth: self.oauth.clone(),
            policy: RenewalPolicy::default(),
            http: self.http.clone(),
            store: dyn_store,
            clock: self.clock.clone(),
            runtime: self.runtime.clone(),
        });
        let api = self.config.api().ok().flatten().map(|config| {
            ApiClient::new(
                session.clone(),
                self.http.clone(),
                self.runtime.clone(),
                self.clock.clone(),
                Arc::new(OsEntropy),
                config,
                DEFAULT_PACE,
            )
        });
        *self.live.borrow_mut() = Some(Live { store, session, api });
        *self.received.borrow_mut() = None;
    }

    async fn handle_redirect(&self, url: &str, include_secrets: bool) -> Result<JsValue, Failure> {
        let pending = self.pending.take()?.ok_or_else(|| {
            Failure::new(
                ErrorKind::NoPendingAuthorization,
                "no consent was started in this tab (or its redirect was already handled); authorize again",
            )
        })?;
        if pending.client_id != self.oauth.client_id {
            return Err(Failure::new(
                ErrorKind::Config,
                format!("the consent was started for application {}, not {}", pending.client_id, self.oauth.client_id),
            ));
        }
        let started = pending.authorization;
        let code = parse_callback(url, &started.state, false)?;
        // The code's 5 minutes started when Blackbaud issued it, not when a failing request gave
        // up (a stalled connection can take minutes to fail): the code bundle's clock starts now.
        let received_at = self.clock.now();
        let exchanged = exchange_code(
            self.http.as_ref(),
            self.clock.as_ref(),
            &self.oauth,
            &code,
            Some(&started.verifier),
            &started.redirect_uri,
        )
        .await;
        let tokens = match exchanged {
            Ok(tokens) => tokens,
            Err(ExchangeError::Unreachable(e)) => {
                *self.received.borrow_mut() = Some(ReceivedCode {
                    client_id: self.oauth.client_id.clone(),
                    code,
                    verifier: started.verifier,
                    redirect_uri: started.redirect_uri,
                    obtained_at: received_at,
                });
                return Err(Failure::new(
                    ErrorKind::TokenEndpointUnreachable,
                    format!(
                        "the browser could not read the token endpoint's answer ({e}); this is usual when it does \
                         not allow cross-origin requests. Export the authorization-code bundle and import it \
                         within {} minutes",
                        CODE_BUNDLE_LIFETIME.whole_minutes()
                    ),
                ));
            }
            Err(ExchangeError::Token(e)) => return Err(e.into()),
            Err(ExchangeError::NoRefreshToken(e)) => return Err(e.into()),
        };
        let info = TokenInfo::of(&tokens, include_secrets);
        self.install(tokens);
        to_js(&info)
    }
}

fn not_logged_in() -> Failure {
    Failure::new(ErrorKind::NotLoggedIn, "no tokens yet: authorize first (or restore a bundle)")
}
