//! The effective settings of one profile, resolved in one place, the uv way: a command-line flag
//! over an environment variable over the config file over the built-in default ([`layered`], the
//! one precedence rule, tested once below).
//!
//! [`Settings::resolve`] takes the three layers as values (the global flags, the loaded file, an
//! environment lookup) and returns validated settings; [`resolve`] is the same for this process.
//! Its phases, in order:
//! 1. [`Resolved::layer`]: every setting's value and where it came from (what `config show`
//!    prints), secrets read from their files;
//! 2. [`Resolved::settings`]: validation into [`Settings`] (URLs, numbers, the client auth).
//!
//! `sync`'s own flags go over the profile's `[sync]` table in [`SyncSettings::resolve`], by the
//! same rule.

use std::path::PathBuf;
use std::time::Duration;

use skysync_core::config::{
    BLACKBAUD_API_URL, BLACKBAUD_AUTHORIZE_URL, BLACKBAUD_TOKEN_URL, DEFAULT_REDIRECT_URI, OAuthConfig,
};
use skysync_core::secret::{ClientSecret, SubscriptionKey};
use skysync_core::{ClientAuth, Endpoints, RenewalPolicy};
use url::Url;

use crate::config::{ConfigError, ConfigSource, Env, LoadedFile, SyncConfig, is_loopback_host};

mod rate_limit;
mod secrets;
mod sync;

pub use rate_limit::{RATE_LIMIT_ENV, RateLimit};
pub use secrets::DB_PASSWORD_CREDENTIAL;
use secrets::{CLIENT_SECRET, SUBSCRIPTION_KEY, db_password_file_entry, secret_entry, token_key_file_entry};
pub use sync::{HISTORY_ENV, SyncSettings};

/// Client-side pace when neither the command line nor the config sets one. Blackbaud has
/// documented both 5 and 10 calls per second; 5 is safe under either, and a nightly sync is bound
/// by the daily quota, not by the pace.
pub const DEFAULT_RATE_LIMIT: f64 = skysync_core::api::DEFAULT_PACE;
/// Entities synced at once by default.
pub const DEFAULT_CONCURRENCY: usize = 4;
/// Seconds a run waits for another run on the same database by default: long enough to ride out
/// the end of a run, short enough that a cron job does not pile up behind a long one.
pub const DEFAULT_LOCK_WAIT_SECS: u64 = 10;

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A command-line flag.
    Flag(&'static str),
    /// An environment variable.
    Env(&'static str),
    /// A systemd credential (`$CREDENTIALS_DIRECTORY/NAME`, from `LoadCredential=`).
    Credential(&'static str),
    /// The config file.
    File,
    /// The built-in default.
    Default,
    /// Not set anywhere.
    Missing,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Flag(v) => write!(f, "flag {v}"),
            Source::Env(v) => write!(f, "env {v}"),
            Source::Credential(n) => write!(f, "systemd credential {n}"),
            Source::File => f.write_str("config file"),
            Source::Default => f.write_str("default"),
            Source::Missing => f.write_str("missing"),
        }
    }
}

/// The precedence rule: the flag, else the environment, else the file, else the default.
pub fn layered<T>(
    flag: Option<(T, &'static str)>,
    env: Option<(T, &'static str)>,
    file: Option<T>,
    default: Option<T>,
) -> (Option<T>, Source) {
    match (flag, env, file, default) {
        (Some((v, name)), ..) => (Some(v), Source::Flag(name)),
        (None, Some((v, name)), ..) => (Some(v), Source::Env(name)),
        (None, None, Some(v), _) => (Some(v), Source::File),
        (None, None, None, Some(v)) => (Some(v), Source::Default),
        (None, None, None, None) => (None, Source::Missing),
    }
}

/// One effective setting.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The setting's name in the config file.
    pub name: &'static str,
    /// Its value (secrets included; show them only through [`Entry::shown`]).
    value: Option<String>,
    /// Whether the value is a secret.
    pub secret: bool,
    /// Where it came from.
    pub source: Source,
}

impl Entry {
    /// The value as it may be displayed: secrets masked.
    pub fn shown(&self) -> Option<String> {
        match (&self.value, self.secret) {
            (None, _) => None,
            (Some(_), true) => Some("******** (set)".into()),
            (Some(v), false) => Some(v.clone()),
        }
    }
}

/// The effective configuration of one profile, before validation.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The profile name.
    pub profile: String,
    /// The config file consulted.
    pub path: PathBuf,
    /// Whether it exists.
    pub file_found: bool,
    /// Every setting, in display order.
    pub entries: Vec<Entry>,
    /// The profile's `[sync]` table.
    pub sync: SyncConfig,
}

/// The effective, validated settings of one profile.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The application's "Application ID".
    pub client_id: String,
    /// The application secret (required for token calls unless `client_auth` is `none`).
    pub client_secret: Option<ClientSecret>,
    /// The `Bb-Api-Subscription-Key` (required for SKY API calls).
    pub subscription_key: Option<SubscriptionKey>,
    /// The redirect URI registered with the application.
    pub redirect_uri: Url,
    /// Authorization, token and API endpoints.
    pub endpoints: Endpoints,
    /// Client authentication at the token endpoint.
    pub client_auth: ClientAuth,
    /// Restricts consent to one environment.
    pub environment_id: Option<String>,
    /// The file holding the PostgreSQL password (`db_password_file`, `SKYSYNC_DB_PASSWORD_FILE`
    /// or the `db_password` systemd credential), read when the sink connects.
    pub db_password_file: Option<PathBuf>,
    /// The token store's key file (`token_key_file`, `SKYSYNC_TOKEN_KEY_FILE` or the
    /// `skysync-token-key` systemd credential); `None` keeps the store in plaintext.
    pub token_key_file: Option<PathBuf>,
    /// Where the tokens live (`token_store`, `SKYSYNC_TOKEN_STORE`): the file, or PostgreSQL.
    pub token_store: crate::token_store::StoreSpec,
    /// Run with a JSON payload on stdin when a person should hear about a run (see
    /// [`crate::notify`]).
    pub notify_command: Option<String>,
    /// Refresh, rotation and warning windows.
    pub policy: RenewalPolicy,
    /// The profile's `[sync]` table.
    pub sync: SyncConfig,
}

impl Settings {
    /// The settings of the profile `args` names, from `file` and `env` (see the module docs).
    pub fn resolve(args: &ConfigSource, file: LoadedFile, env: Env<'_>) -> Result<Settings, ConfigError> {
        Resolved::layer(args, file, env)?.settings()
    }

    /// The OAuth engine's view of these settings.
    pub fn oauth(&self) -> OAuthConfig {
        OAuthConfig {
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            redirect_uri: self.redirect_uri.clone(),
            endpoints: self.endpoints.clone(),
            client_auth: self.client_auth,
            environment_id: self.environment_id.clone(),
        }
    }
}

/// The profile, the config file and every setting of this process (flags from `args`, this
/// process's environment), not yet validated.
pub fn resolve(args: &ConfigSource) -> Result<Resolved, ConfigError> {
    let env = &crate::config::process_env;
    let profile = crate::config::profile_name_in(args.profile.as_deref(), env)?;
    let (path, named) = crate::config::locate(args.path.as_deref(), env)?;
    Resolved::layer(args, crate::config::load(path, named, &profile)?, env)
}

/// What a command needs configured, so that every missing setting is reported at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Token calls: the application id and (unless `client_auth = none`) its secret.
    Tokens,
    /// SKY API calls: the token settings and the subscription key.
    Api,
}

const HINT_CLIENT_ID: &str =
    "Find it at developer.blackbaud.com → My applications → your application (\"Application ID\").";
const HINT_SECRET: &str = "Find it at developer.blackbaud.com → My applications → your application (\"Primary application secret\"); prefer SKYSYNC_CLIENT_SECRET_FILE or `client_secret_file` to keeping it in the config file.";
const HINT_SUBSCRIPTION: &str = "Find it at developer.blackbaud.com/subscriptions → your subscription → \"Primary access key\"; prefer SKYSYNC_SUBSCRIPTION_KEY_FILE or `subscription_key_file` to keeping it in the config file.";

impl Resolved {
    /// Phase 1: every setting from the layers, secrets read from their files (and refused when
    /// others can read them).
    pub fn layer(args: &ConfigSource, file: LoadedFile, env: Env<'_>) -> Result<Resolved, ConfigError> {
        let profile = crate::config::profile_name_in(args.profile.as_deref(), env)?;
        let p = file.profile;
        let plain = |name, var: &'static str, file: Option<String>, default: Option<String>| {
            let (value, source) = layered(None, env(var).map(|v| (v, var)), file, default);
            Entry { name, value, secret: false, source }
        };
        let d = RenewalPolicy::default();
        let days = |d: Duration| Some((d.as_secs() / 86_400).to_string());
        let number = |n: Option<u64>| n.map(|v| v.to_string());
        let entries = vec![
            plain("client_id", "SKYSYNC_CLIENT_ID", p.client_id, None),
            secret_entry(&CLIENT_SECRET, p.client_secret, p.client_secret_file.as_deref(), env)?,
            secret_entry(&SUBSCRIPTION_KEY, p.subscription_key, p.subscription_key_file.as_deref(), env)?,
            db_password_file_entry(p.db_password_file.as_deref(), env)?,
            token_key_file_entry(p.token_key_file.as_deref(), env),
            plain("redirect_uri", "SKYSYNC_REDIRECT_URI", p.redirect_uri, Some(DEFAULT_REDIRECT_URI.into())),
            plain("auth_url", "SKYSYNC_AUTH_URL", p.auth_url, Some(BLACKBAUD_AUTHORIZE_URL.into())),
            plain("token_url", "SKYSYNC_TOKEN_URL", p.token_url, Some(BLACKBAUD_TOKEN_URL.into())),
            plain("api_url", "SKYSYNC_API_URL", p.api_url, Some(BLACKBAUD_API_URL.into())),
            plain("client_auth", "SKYSYNC_CLIENT_AUTH", p.client_auth, Some("basic".into())),
            plain("environment_id", "SKYSYNC_ENVIRONMENT_ID", p.environment_id, None),
            plain("token_store", "SKYSYNC_TOKEN_STORE", p.token_store, Some("file".into())),
            plain("notify_command", "SKYSYNC_NOTIFY_COMMAND", p.notify_command, None),
            plain(
                "access_skew_secs",
                "SKYSYNC_ACCESS_SKEW_SECS",
                number(p.access_skew_secs),
                Some(d.access_skew.as_secs().to_string()),
            ),
            plain(
                "renewal_window_days",
                "SKYSYNC_RENEWAL_WINDOW_DAYS",
                number(p.renewal_window_days),
                days(d.renewal_window),
            ),
            plain("warn_window_days", "SKYSYNC_WARN_WINDOW_DAYS", number(p.warn_window_days), days(d.warn_window)),
        ];
        let mut entries = entries;
        // A token store URL may carry a password: then `config show` masks it.
        for e in entries.iter_mut().filter(|e| e.name == "token_store") {
            e.secret = e.value.as_deref().is_some_and(crate::config::url_has_password);
        }
        Ok(Resolved { profile, path: file.path, file_found: file.found, entries, sync: p.sync.unwrap_or_default() })
    }

    /// The entry named `name`.
    pub fn entry(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name)
    }

    fn value(&self, name: &str) -> Option<&str> {
        self.entry(name).and_then(|e| e.value.as_deref())
    }

    fn source(&self, name: &str) -> String {
        self.entry(name).map(|e| e.source.to_string()).unwrap_or_default()
    }

    /// The token store's key file, if one is configured (see [`Settings::token_key_file`]).
    pub fn token_key_file(&self) -> Option<PathBuf> {
        self.value("token_key_file").map(PathBuf::from)
    }

    /// The PostgreSQL password file, if one is configured (see [`Settings::db_password_file`]).
    pub fn db_password_file(&self) -> Option<PathBuf> {
        self.value("db_password_file").map(PathBuf::from)
    }

    /// Where the profile's tokens live (`token_store`), validated; needs no other setting, so
    /// `logout` and `token-store` work before the application is configured.
    pub fn token_store(&self) -> Result<crate::token_store::StoreSpec, ConfigError> {
        crate::token_store::StoreSpec::parse(self.value("token_store")).map_err(|problem| ConfigError::Invalid {
            name: "token_store",
            origin: self.source("token_store"),
            problem,
        })
    }

    /// The settings `needs` requires, in the order they are set up.
    pub fn required_for(&self, needs: Needs) -> Vec<&'static str> {
        let mut names = vec!["client_id"];
        if self.value("client_auth").and_then(ClientAuth::parse) != Some(ClientAuth::None) {
            names.push("client_secret");
        }
        if needs == Needs::Api {
            names.push("subscription_key");
        }
        names
    }

    /// Fails with every setting `needs` requires that has no value: one
    /// [`ConfigError::Missing`] when one is missing, [`ConfigError::MissingSeveral`] listing each
    /// (its environment variable, its key and where Blackbaud's portal shows it) otherwise.
    pub fn require(&self, needs: Needs) -> Result<(), ConfigError> {
        let file = self.path.display().to_string();
        let mut missing: Vec<ConfigError> = self
            .required_for(needs)
            .into_iter()
            .filter(|name| self.value(name).is_none())
            .map(|name| match name {
                "client_secret" => Self::missing_secret(&self.profile, &file),
                "subscription_key" => Self::missing_subscription_key(&self.profile, &file),
                _ => ConfigError::Missing {
                    name: "client_id",
                    env: "SKYSYNC_CLIENT_ID",
                    profile: self.profile.clone(),
                    file: file.clone(),
                    hint: HINT_CLIENT_ID,
                },
            })
            .collect();
        match missing.len() {
            0 => Ok(()),
            1 => Err(missing.remove(0)),
            _ => Err(ConfigError::MissingSeveral { profile: self.profile.clone(), missing }),
        }
    }

    /// Phase 2: validates everything into [`Settings`].
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        let client_id = self.value("client_id").ok_or_else(|| ConfigError::Missing {
            name: "client_id",
            env: "SKYSYNC_CLIENT_ID",
            profile: self.profile.clone(),
            file: self.path.display().to_string(),
            hint: HINT_CLIENT_ID,
        })?;
        Ok(Settings {
            client_id: client_id.to_owned(),
            client_secret: self.value("client_secret").map(ClientSecret::new),
            subscription_key: self.value("subscription_key").map(SubscriptionKey::new),
            redirect_uri: self.url("redirect_uri")?,
            endpoints: self.endpoints()?,
            client_auth: self.client_auth()?,
            environment_id: self.value("environment_id").map(str::to_owned),
            db_password_file: self.value("db_password_file").map(PathBuf::from),
            token_key_file: self.token_key_file(),
            token_store: self.token_store()?,
            notify_command: self.value("notify_command").filter(|c| !c.trim().is_empty()).map(str::to_owned),
            policy: self.policy()?,
            sync: self.sync.clone(),
        })
    }

    fn client_auth(&self) -> Result<ClientAuth, ConfigError> {
        let raw = self.value("client_auth").unwrap_or("basic");
        ClientAuth::parse(raw).ok_or_else(|| ConfigError::Invalid {
            name: "client_auth",
            origin: self.source("client_auth"),
            problem: format!("{raw:?} is not one of {}", ClientAuth::ALL.map(ClientAuth::as_str).join(", ")),
        })
    }

    fn policy(&self) -> Result<RenewalPolicy, ConfigError> {
        Ok(RenewalPolicy {
            // Bounded so that time arithmetic cannot overflow: a day of skew, ten years of window.
            access_skew: Duration::from_secs(self.number("access_skew_secs", 86_400)?),
            renewal_window: Duration::from_secs(self.number("renewal_window_days", 3650)? * 86_400),
            warn_window: Duration::from_secs(self.number("warn_window_days", 3650)? * 86_400),
        })
    }

    fn endpoints(&self) -> Result<Endpoints, ConfigError> {
        let mut api = self.endpoint("api_url")?;
        if !api.path().ends_with('/') {
            let p = format!("{}/", api.path());
            api.set_path(&p);
        }
        Ok(Endpoints { authorize: self.endpoint("auth_url")?, token: self.endpoint("token_url")?, api })
    }

    fn url(&self, name: &'static str) -> Result<Url, ConfigError> {
        let raw = self.value(name).unwrap_or_default();
        let url = Url::parse(raw).map_err(|e| ConfigError::Invalid {
            name,
            origin: self.source(name),
            problem: format!("{raw:?} is not a URL ({e})"),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ConfigError::Invalid {
                name,
                origin: self.source(name),
                problem: "only http and https URLs are allowed".into(),
            });
        }
        Ok(url)
    }

    /// An OAuth or API endpoint: `https://`, or `http://` only on loopback (the simulator, a
    /// local proxy). Refused at load, before any request carries a secret there.
    fn endpoint(&self, name: &'static str) -> Result<Url, ConfigError> {
        let url = self.url(name)?;
        if url.scheme() != "https" && !is_loopback_host(&url) {
            return Err(ConfigError::Invalid {
                name,
                origin: self.source(name),
                problem: format!(
                    "{} is not https://; only a loopback host (127.0.0.1, ::1, localhost) may use http://, \
                     because the client secret, codes and tokens travel to this endpoint",
                    skysync_core::http::redacted_url(&url)
                ),
            });
        }
        Ok(url)
    }

    fn number(&self, name: &'static str, max: u64) -> Result<u64, ConfigError> {
        let raw = self.value(name).unwrap_or_default();
        let n: u64 = raw.trim().parse().map_err(|_| ConfigError::Invalid {
            name,
            origin: self.source(name),
            problem: format!("{raw:?} is not a whole number"),
        })?;
        if n > max {
            return Err(ConfigError::Invalid {
                name,
                origin: self.source(name),
                problem: format!("{n} is more than the largest sensible value, {max}"),
            });
        }
        Ok(n)
    }

    /// The error for a missing client secret (needed for token calls unless `client_auth = none`).
    pub fn missing_secret(profile: &str, file: &str) -> ConfigError {
        ConfigError::Missing {
            name: "client_secret",
            env: "SKYSYNC_CLIENT_SECRET",
            profile: profile.to_owned(),
            file: file.to_owned(),
            hint: HINT_SECRET,
        }
    }

    /// The error for a missing subscription key (needed for SKY API calls).
    pub fn missing_subscription_key(profile: &str, file: &str) -> ConfigError {
        ConfigError::Missing {
            name: "subscription_key",
            env: "SKYSYNC_SUBSCRIPTION_KEY",
            profile: profile.to_owned(),
            file: file.to_owned(),
            hint: HINT_SUBSCRIPTION,
        }
    }
}

#[cfg(test)]
mod tests;
