//! Configuration: `config.toml` profiles, environment variables over them, and where each
//! effective value came from (for `skysync config show`).
//!
//! ```toml
//! [profiles.default]
//! client_id = "…"                 # or SKYSYNC_CLIENT_ID
//! client_secret_file = "/etc/skysync/secret"   # or SKYSYNC_CLIENT_SECRET(_FILE)
//! subscription_key = "…"          # or SKYSYNC_SUBSCRIPTION_KEY
//! renewal_window_days = 60
//! client_auth = "basic"          # or SKYSYNC_CLIENT_AUTH: basic | basic-form-encoded | body | none
//!
//! [profiles.default.sync]
//! entities = ["constituents", "gifts"]
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use skysync_core::config::{BLACKBAUD_API_URL, BLACKBAUD_AUTHORIZE_URL, BLACKBAUD_TOKEN_URL, DEFAULT_REDIRECT_URI};
use skysync_core::secret::{ClientSecret, SubscriptionKey};
use skysync_core::{ClientAuth, Endpoints, RenewalPolicy};
use url::Url;

use crate::context::Settings;
use crate::sync::SyncConfig;

/// The configuration is missing, unreadable or invalid (exit code 3).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A required setting has no value.
    #[error(
        "missing setting `{name}` for profile `{profile}`: set {env} or `{name}` under [profiles.{profile}] in {file}. {hint}"
    )]
    Missing {
        /// The setting.
        name: &'static str,
        /// Its environment variable.
        env: &'static str,
        /// The profile.
        profile: String,
        /// The config file consulted.
        file: String,
        /// Where to find the value.
        hint: &'static str,
    },
    /// A setting has a value that cannot be used.
    #[error("invalid setting `{name}` (from {origin}): {problem}")]
    Invalid {
        /// The setting.
        name: &'static str,
        /// Where the value came from.
        origin: String,
        /// What is wrong.
        problem: String,
    },
    /// The config file (or a secret file) could not be read or parsed, or is unsafe.
    #[error("{0}")]
    File(String),
}

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An environment variable.
    Env(&'static str),
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
            Source::Env(v) => write!(f, "env {v}"),
            Source::File => f.write_str("config file"),
            Source::Default => f.write_str("default"),
            Source::Missing => f.write_str("missing"),
        }
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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    profiles: BTreeMap<String, ProfileConfig>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileConfig {
    client_id: Option<String>,
    client_secret: Option<String>,
    client_secret_file: Option<PathBuf>,
    subscription_key: Option<String>,
    redirect_uri: Option<String>,
    auth_url: Option<String>,
    token_url: Option<String>,
    api_url: Option<String>,
    client_auth: Option<String>,
    environment_id: Option<String>,
    access_skew_secs: Option<u64>,
    renewal_window_days: Option<u64>,
    warn_window_days: Option<u64>,
    #[serde(default)]
    sync: Option<SyncConfig>,
}

/// Where to look, from the command line.
#[derive(Debug, Clone, Default)]
pub struct ConfigSource {
    /// `--config` (falls back to `SKYSYNC_CONFIG`, then the XDG default).
    pub path: Option<PathBuf>,
    /// `--profile` (falls back to `SKYSYNC_PROFILE`, then `default`).
    pub profile: Option<String>,
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

const HINT_CLIENT_ID: &str =
    "Find it at developer.blackbaud.com → My applications → your application (\"Application ID\").";
const HINT_SECRET: &str = "Find it at developer.blackbaud.com → My applications → your application (\"Primary application secret\"); prefer SKYSYNC_CLIENT_SECRET_FILE or `client_secret_file` to keeping it in the config file.";
const HINT_SUBSCRIPTION: &str =
    "Find it at developer.blackbaud.com/subscriptions → your subscription → \"Primary access key\".";

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The default config file: `$XDG_CONFIG_HOME/skysync/config.toml`.
pub fn default_config_path() -> Option<PathBuf> {
    directories::BaseDirs::new().map(|d| d.config_dir().join("skysync").join("config.toml"))
}

/// The state directory of `profile`: `$XDG_DATA_HOME/skysync/<profile>/`.
pub fn data_dir(profile: &str) -> Result<PathBuf, ConfigError> {
    let base = directories::BaseDirs::new()
        .ok_or_else(|| ConfigError::File("cannot determine the home directory (set HOME or XDG_DATA_HOME)".into()))?;
    Ok(base.data_dir().join("skysync").join(profile))
}

/// The profile name from the command line, `SKYSYNC_PROFILE`, or `default`, checked to be a
/// safe directory name.
pub fn profile_name(from_cli: Option<&str>) -> Result<String, ConfigError> {
    let name = from_cli.map(str::to_owned).or_else(|| env("SKYSYNC_PROFILE")).unwrap_or_else(|| "default".into());
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !name.starts_with('-');
    if !ok {
        return Err(ConfigError::Invalid {
            name: "profile",
            origin: "--profile/SKYSYNC_PROFILE".into(),
            problem: format!("{name:?} is not a valid profile name (letters, digits, '-' and '_', up to 64)"),
        });
    }
    Ok(name)
}

/// Reads the config file and the environment.
pub fn resolve(src: &ConfigSource) -> Result<Resolved, ConfigError> {
    let profile = profile_name(src.profile.as_deref())?;
    let explicit = src.path.clone().or_else(|| env("SKYSYNC_CONFIG").map(PathBuf::from));
    let path = match &explicit {
        Some(p) => p.clone(),
        None => default_config_path().ok_or_else(|| {
            ConfigError::File("cannot determine the config directory (set HOME or XDG_CONFIG_HOME)".into())
        })?,
    };
    let (file, file_found) = match std::fs::read_to_string(&path) {
        Ok(text) => {
            let parsed: FileConfig = toml::from_str(&text)
                .map_err(|e| ConfigError::File(format!("cannot parse {}: {e}", path.display())))?;
            (parsed, true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => (FileConfig::default(), false),
        Err(e) => return Err(ConfigError::File(format!("cannot read config file {}: {e}", path.display()))),
    };
    let p = file.profiles.get(&profile).cloned().unwrap_or_default();
    if p.client_secret.is_some() {
        check_private(&path, "the config file holds client_secret")?;
    }

    let mut entries = Vec::new();
    entries.push(pick("client_id", "SKYSYNC_CLIENT_ID", p.client_id.clone(), None, false));
    // The secret: a value (env or file), else a file to read it from.
    let secret = |value: String, source| Entry { name: "client_secret", value: Some(value), secret: true, source };
    entries.push(if let Some(v) = env("SKYSYNC_CLIENT_SECRET") {
        secret(v, Source::Env("SKYSYNC_CLIENT_SECRET"))
    } else if let Some(f) = env("SKYSYNC_CLIENT_SECRET_FILE") {
        secret(read_secret_file(Path::new(&f))?, Source::Env("SKYSYNC_CLIENT_SECRET_FILE"))
    } else if let Some(v) = p.client_secret.clone() {
        secret(v, Source::File)
    } else if let Some(f) = &p.client_secret_file {
        secret(read_secret_file(f)?, Source::File)
    } else {
        Entry { name: "client_secret", value: None, secret: true, source: Source::Missing }
    });
    let mut plain =
        |name, var, file, default: Option<&str>, secret| entries.push(pick(name, var, file, default, secret));
    let d = RenewalPolicy::default();
    plain("subscription_key", "SKYSYNC_SUBSCRIPTION_KEY", p.subscription_key, None, true);
    plain("redirect_uri", "SKYSYNC_REDIRECT_URI", p.redirect_uri, Some(DEFAULT_REDIRECT_URI), false);
    plain("auth_url", "SKYSYNC_AUTH_URL", p.auth_url, Some(BLACKBAUD_AUTHORIZE_URL), false);
    plain("token_url", "SKYSYNC_TOKEN_URL", p.token_url, Some(BLACKBAUD_TOKEN_URL), false);
    plain("api_url", "SKYSYNC_API_URL", p.api_url, Some(BLACKBAUD_API_URL), false);
    plain("client_auth", "SKYSYNC_CLIENT_AUTH", p.client_auth, Some("basic"), false);
    plain("environment_id", "SKYSYNC_ENVIRONMENT_ID", p.environment_id, None, false);
    let skew = d.access_skew.as_secs().to_string();
    let renew = (d.renewal_window.as_secs() / 86_400).to_string();
    let warn = (d.warn_window.as_secs() / 86_400).to_string();
    plain(
        "access_skew_secs",
        "SKYSYNC_ACCESS_SKEW_SECS",
        p.access_skew_secs.map(|v| v.to_string()),
        Some(&skew),
        false,
    );
    plain(
        "renewal_window_days",
        "SKYSYNC_RENEWAL_WINDOW_DAYS",
        p.renewal_window_days.map(|v| v.to_string()),
        Some(&renew),
        false,
    );
    plain(
        "warn_window_days",
        "SKYSYNC_WARN_WINDOW_DAYS",
        p.warn_window_days.map(|v| v.to_string()),
        Some(&warn),
        false,
    );

    Ok(Resolved { profile, path, file_found, entries, sync: p.sync.unwrap_or_default() })
}

/// A setting from the environment, else the file, else the default.
fn pick(name: &'static str, var: &'static str, file: Option<String>, default: Option<&str>, secret: bool) -> Entry {
    let (value, source) = if let Some(v) = env(var) {
        (Some(v), Source::Env(var))
    } else if let Some(v) = file {
        (Some(v), Source::File)
    } else if let Some(d) = default {
        (Some(d.to_owned()), Source::Default)
    } else {
        (None, Source::Missing)
    };
    Entry { name, value, secret, source }
}

/// Refuses a secret-bearing file that other users can read.
fn check_private(path: &Path, what: &str) -> Result<(), ConfigError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o044 != 0
        {
            return Err(ConfigError::File(format!(
                "{what}, but {} is readable by other users (mode {:o}); run `chmod 600 {}`",
                path.display(),
                meta.permissions().mode() & 0o777,
                path.display()
            )));
        }
    }
    let _ = (path, what);
    Ok(())
}

fn read_secret_file(path: &Path) -> Result<String, ConfigError> {
    check_private(path, "client_secret_file holds a secret")?;
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::File(format!("cannot read client_secret_file {}: {e}", path.display())))?;
    let secret = text.trim().to_owned();
    if secret.is_empty() {
        return Err(ConfigError::File(format!("client_secret_file {} is empty", path.display())));
    }
    Ok(secret)
}

impl Resolved {
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

    fn missing(&self, name: &'static str, env: &'static str, hint: &'static str) -> ConfigError {
        ConfigError::Missing { name, env, profile: self.profile.clone(), file: self.path.display().to_string(), hint }
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

    /// Validates everything into [`Settings`].
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        let client_id =
            self.value("client_id").ok_or_else(|| self.missing("client_id", "SKYSYNC_CLIENT_ID", HINT_CLIENT_ID))?;
        let raw_auth = self.value("client_auth").unwrap_or("basic");
        let client_auth = ClientAuth::parse(raw_auth).ok_or_else(|| ConfigError::Invalid {
            name: "client_auth",
            origin: self.source("client_auth"),
            problem: format!("{raw_auth:?} is not one of {}", ClientAuth::ALL.map(ClientAuth::as_str).join(", ")),
        })?;
        let policy = RenewalPolicy {
            // Bounded so that time arithmetic cannot overflow: a day of skew, ten years of window.
            access_skew: Duration::from_secs(self.number("access_skew_secs", 86_400)?),
            renewal_window: Duration::from_secs(self.number("renewal_window_days", 3650)? * 86_400),
            warn_window: Duration::from_secs(self.number("warn_window_days", 3650)? * 86_400),
        };
        let api = {
            let mut u = self.url("api_url")?;
            if !u.path().ends_with('/') {
                let p = format!("{}/", u.path());
                u.set_path(&p);
            }
            u
        };
        Ok(Settings {
            client_id: client_id.to_owned(),
            client_secret: self.value("client_secret").map(ClientSecret::new),
            subscription_key: self.value("subscription_key").map(SubscriptionKey::new),
            redirect_uri: self.url("redirect_uri")?,
            endpoints: Endpoints { authorize: self.url("auth_url")?, token: self.url("token_url")?, api },
            client_auth,
            environment_id: self.value("environment_id").map(str::to_owned),
            policy,
            sync: self.sync.clone(),
        })
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
