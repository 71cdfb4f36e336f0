//! What every command works with: the profile, its settings, its state directory, and factories
//! for the token store, the token session and the SKY API client.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use skysync_core::config::ApiConfig;
use skysync_core::host::{OsEntropy, SystemClock};
use skysync_core::http::{HttpClient, ReqwestClient};
use skysync_core::{ApiClient, ClientAuth, Session, SessionParts};

use crate::config::ConfigError;
pub use crate::output::Output;
use crate::runtime::TokioRuntime;
use crate::settings::Resolved;
pub use crate::settings::Settings;
use crate::token_crypto::AtRest;
use crate::token_store::ProfileStore;

/// One invocation's profile, settings and shared clients.
#[derive(Debug)]
pub struct Context {
    profile: String,
    settings: Settings,
    data_dir: PathBuf,
    output: Output,
    store: Arc<ProfileStore>,
    http: OnceLock<Arc<LoggedHttp>>,
    session: OnceLock<Session>,
}

impl Context {
    /// A context for `profile`, keeping state under `data_dir`.
    pub fn new(profile: String, settings: Settings, data_dir: PathBuf, output: Output) -> Self {
        let at_rest = AtRest::from_key_file(settings.token_key_file.as_deref());
        let store = Arc::new(ProfileStore::open(
            &profile,
            data_dir.clone(),
            &settings.token_store,
            at_rest,
            settings.db_password_file.clone(),
        ));
        Self { profile, settings, data_dir, output, store, http: OnceLock::new(), session: OnceLock::new() }
    }

    /// The profile name.
    pub fn profile(&self) -> &str {
        &self.profile
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// `$XDG_DATA_HOME/skysync/<profile>/`, created with mode 0700 on first write.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Output preferences.
    pub fn output(&self) -> &Output {
        &self.output
    }

    /// The profile's token store.
    pub fn store(&self) -> Arc<ProfileStore> {
        self.store.clone()
    }

    /// The shared HTTP client.
    pub fn http(&self) -> anyhow::Result<Arc<LoggedHttp>> {
        if let Some(h) = self.http.get() {
            return Ok(h.clone());
        }
        Ok(self.http.get_or_init(|| Arc::new(LoggedHttp::default())).clone())
    }

    /// Fails with the key problem (exit code 3) when the token store's key is configured but
    /// cannot be used, or is not the key the stored tokens were written with. Checked before a
    /// consent, whose code works once: tokens that cannot be saved would be lost.
    pub async fn require_usable_store_key(&self) -> Result<(), skysync_core::store::StoreError> {
        use skysync_core::store::{StoreError, TokenStore};
        if let AtRest::Unavailable(problem) = self.store.at_rest() {
            return Err(StoreError::Key(problem.clone()));
        }
        match self.store.load().await {
            Err(StoreError::Key(problem)) => Err(StoreError::Key(problem)),
            // An unreadable or insecure store is the consent's to repair or report, as before.
            _ => Ok(()),
        }
    }

    /// Fails with a configuration error when token calls would lack the client secret.
    pub fn require_client_secret(&self) -> Result<(), ConfigError> {
        if self.settings.client_secret.is_none() && self.settings.client_auth != ClientAuth::None {
            return Err(Resolved::missing_secret(&self.profile, &config_file_hint()));
        }
        Ok(())
    }

    /// The token session (the profile's store, reqwest, the system clock, tokio). Shared by every caller
    /// in this process, so refreshes are single-flight here and the store lock covers the rest.
    pub fn session(&self) -> anyhow::Result<Session> {
        if let Some(s) = self.session.get() {
            return Ok(s.clone());
        }
        self.require_client_secret()?;
        let http: Arc<dyn HttpClient> = self.http()?;
        let session = Session::new(SessionParts {
            oauth: self.settings.oauth(),
            policy: self.settings.policy,
            http,
            store: self.store.clone(),
            clock: Arc::new(SystemClock),
            runtime: Arc::new(TokioRuntime),
        });
        Ok(self.session.get_or_init(|| session).clone())
    }

    /// A SKY API client over [`Context::session`], pacing at `per_second` calls per second
    /// (0 = unpaced) and stopping after `budget` calls.
    pub fn api_client(&self, per_second: f64, budget: Option<u64>) -> anyhow::Result<ApiClient> {
        let key = self
            .settings
            .subscription_key
            .clone()
            .ok_or_else(|| Resolved::missing_subscription_key(&self.profile, &config_file_hint()))?;
        let session = self.session()?;
        let http: Arc<dyn HttpClient> = self.http()?;
        Ok(ApiClient::new(
            session,
            http,
            Arc::new(TokioRuntime),
            Arc::new(SystemClock),
            Arc::new(OsEntropy),
            ApiConfig { base: self.settings.endpoints.api.clone(), subscription_key: key },
            per_second,
        )
        .with_budget(budget)
        .with_retry_notices(Arc::new(warn_retry)))
    }
}

/// One warning line per retry and 429 wait, at the default verbosity: what failed, which retry,
/// how long it waits. The URL is redacted and the reason holds no secrets.
fn warn_retry(n: &skysync_core::api::RetryNotice) {
    tracing::warn!("{}; retry {} of {} in {:.1}s", n.reason, n.retry, n.url, n.wait.as_secs_f64());
}

fn config_file_hint() -> String {
    std::env::var("SKYSYNC_CONFIG")
        .ok()
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(crate::config::default_config_path)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "the config file".into())
}

/// reqwest with a log line per request. Only the types' redacted `Debug` is logged: method,
/// URL without query values, header names, body sizes, status. Never header values or bodies.
///
/// The reqwest client is built on the first request: building it (TLS configuration, root
/// certificates, connection pools) costs more than all the rest of `skysync token` with a cached
/// token, which sends no request at all.
#[derive(Debug, Default)]
pub struct LoggedHttp(OnceLock<ReqwestClient>);

impl LoggedHttp {
    fn client(&self) -> Result<&ReqwestClient, skysync_core::http::TransportError> {
        if let Some(client) = self.0.get() {
            return Ok(client);
        }
        let client = ReqwestClient::new()?;
        Ok(self.0.get_or_init(|| client))
    }
}

#[async_trait::async_trait]
impl HttpClient for LoggedHttp {
    async fn execute(
        &self,
        request: skysync_core::http::HttpRequest,
    ) -> Result<skysync_core::http::HttpResponse, skysync_core::http::TransportError> {
        tracing::trace!(?request, "sending");
        let method = request.method.as_str();
        let url = skysync_core::http::redacted_url(&request.url);
        let result = self.client()?.execute(request).await;
        match &result {
            Ok(response) => tracing::debug!(method, url, status = response.status, ?response, "response"),
            Err(error) => tracing::debug!(method, url, %error, "request failed"),
        }
        result
    }
}
