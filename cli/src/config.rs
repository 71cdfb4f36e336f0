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
            Source::Env(v) => write!(f, "env {v}"),
            Source::Credential(n) => write!(f, "systemd credential {n}"),
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
    subscription_key_file: Option<PathBuf>,
    db_password_file: Option<PathBuf>,
    token_store: Option<String>,
    notify_command: Option<String>,
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
const HINT_SUBSCRIPTION: &str = "Find it at developer.blackbaud.com/subscriptions → your subscription → \"Primary access key\"; prefer SKYSYNC_SUBSCRIPTION_KEY_FILE or `subscription_key_file` to keeping it in the config file.";

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

/// The profiles the config file defines (`[profiles.NAME]`), in name order; none without a file.
pub fn profile_names(path: Option<&Path>) -> Result<Vec<String>, ConfigError> {
    let path = match path.map(Path::to_path_buf).or_else(|| env("SKYSYNC_CONFIG").map(PathBuf::from)) {
        Some(p) => p,
        None => match default_config_path() {
            Some(p) => p,
            None => return Ok(Vec::new()),
        },
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            check_config_file(&path)?;
            Ok(parse_config_text(&path, &text)?.profiles.into_keys().collect())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(ConfigError::File(format!("cannot read config file {}: {e}", path.display()))),
    }
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
            check_config_file(&path)?;
            (parse_config_text(&path, &text)?, true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => (FileConfig::default(), false),
        Err(e) => return Err(ConfigError::File(format!("cannot read config file {}: {e}", path.display()))),
    };
    let p = file.profiles.get(&profile).cloned().unwrap_or_default();
    check_secret_fields(&path, &p)?;

    let mut entries = vec![
        pick("client_id", "SKYSYNC_CLIENT_ID", p.client_id.clone(), None, false),
        secret_entry(&CLIENT_SECRET, p.client_secret.clone(), p.client_secret_file.as_deref())?,
        secret_entry(&SUBSCRIPTION_KEY, p.subscription_key.clone(), p.subscription_key_file.as_deref())?,
        db_password_file_entry(p.db_password_file.as_deref())?,
    ];
    let mut plain =
        |name, var, file, default: Option<&str>, secret| entries.push(pick(name, var, file, default, secret));
    let d = RenewalPolicy::default();
    plain("redirect_uri", "SKYSYNC_REDIRECT_URI", p.redirect_uri, Some(DEFAULT_REDIRECT_URI), false);
    plain("auth_url", "SKYSYNC_AUTH_URL", p.auth_url, Some(BLACKBAUD_AUTHORIZE_URL), false);
    plain("token_url", "SKYSYNC_TOKEN_URL", p.token_url, Some(BLACKBAUD_TOKEN_URL), false);
    plain("api_url", "SKYSYNC_API_URL", p.api_url, Some(BLACKBAUD_API_URL), false);
    plain("client_auth", "SKYSYNC_CLIENT_AUTH", p.client_auth, Some("basic"), false);
    plain("environment_id", "SKYSYNC_ENVIRONMENT_ID", p.environment_id, None, false);
    plain("token_store", "SKYSYNC_TOKEN_STORE", p.token_store.clone(), Some("file"), false);
    plain("notify_command", "SKYSYNC_NOTIFY_COMMAND", p.notify_command, None, false);
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

    // A token store URL may carry a password: then `config show` masks it.
    for e in entries.iter_mut().filter(|e| e.name == "token_store") {
        e.secret = e.value.as_deref().is_some_and(url_has_password);
    }
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

    /// Where the profile's tokens live (`token_store`), validated; needs no other setting, so
    /// `logout` and `token-store` work before the application is configured.
    pub fn token_store(&self) -> Result<crate::token_store::StoreSpec, ConfigError> {
        crate::token_store::StoreSpec::parse(self.value("token_store")).map_err(|problem| ConfigError::Invalid {
            name: "token_store",
            origin: self.source("token_store"),
            problem,
        })
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
            let mut u = self.endpoint("api_url")?;
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
            endpoints: Endpoints { authorize: self.endpoint("auth_url")?, token: self.endpoint("token_url")?, api },
            client_auth,
            environment_id: self.value("environment_id").map(str::to_owned),
            db_password_file: self.value("db_password_file").map(PathBuf::from),
            token_store: self.token_store()?,
            notify_command: self.value("notify_command").filter(|c| !c.trim().is_empty()).map(str::to_owned),
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

// ---------------------------------------------------------------------------------------------
// Hardening of the config file and of where secrets come from (SECURITY.md, "Configuration").

/// Where one secret may come from, in this order: the environment variable with the value, the
/// environment variable naming a file, the systemd credential, the config file's value, the
/// config file's `*_file` setting.
struct SecretSetting {
    name: &'static str,
    env: &'static str,
    env_file: &'static str,
    file_key: &'static str,
    /// The name under `$CREDENTIALS_DIRECTORY` (`LoadCredential=NAME:/path`).
    credential: &'static str,
}

const CLIENT_SECRET: SecretSetting = SecretSetting {
    name: "client_secret",
    env: "SKYSYNC_CLIENT_SECRET",
    env_file: "SKYSYNC_CLIENT_SECRET_FILE",
    file_key: "client_secret_file",
    credential: "client_secret",
};

const SUBSCRIPTION_KEY: SecretSetting = SecretSetting {
    name: "subscription_key",
    env: "SKYSYNC_SUBSCRIPTION_KEY",
    env_file: "SKYSYNC_SUBSCRIPTION_KEY_FILE",
    file_key: "subscription_key_file",
    credential: "subscription_key",
};

/// The systemd credential holding the PostgreSQL password.
pub const DB_PASSWORD_CREDENTIAL: &str = "db_password";

/// `$CREDENTIALS_DIRECTORY/name`, when systemd passed that credential to this service.
fn credential_file(name: &str) -> Option<PathBuf> {
    let dir = env("CREDENTIALS_DIRECTORY")?;
    let path = Path::new(&dir).join(name);
    path.is_file().then_some(path)
}

/// The entry of one secret, read from wherever [`SecretSetting`] says it is.
fn secret_entry(s: &SecretSetting, value: Option<String>, file: Option<&Path>) -> Result<Entry, ConfigError> {
    let entry = |value: String, source| Entry { name: s.name, value: Some(value), secret: true, source };
    Ok(if let Some(v) = env(s.env) {
        entry(v, Source::Env(s.env))
    } else if let Some(f) = env(s.env_file) {
        entry(read_secret_file(Path::new(&f), s.env_file)?, Source::Env(s.env_file))
    } else if let Some(f) = credential_file(s.credential) {
        entry(read_secret_file(&f, "the systemd credential")?, Source::Credential(s.credential))
    } else if let Some(v) = value {
        entry(v, Source::File)
    } else if let Some(f) = file {
        entry(read_secret_file(f, s.file_key)?, Source::File)
    } else {
        Entry { name: s.name, value: None, secret: true, source: Source::Missing }
    })
}

/// The file holding the PostgreSQL password (not the password: the sink reads it when it
/// connects). `SKYSYNC_DB_PASSWORD_FILE`, else the `db_password` credential, else the config's
/// `db_password_file`. Checked here, so an unsafe file is a configuration error (exit 3).
fn db_password_file_entry(file: Option<&Path>) -> Result<Entry, ConfigError> {
    const NAME: &str = "db_password_file";
    let (path, source) = if let Some(f) = env("SKYSYNC_DB_PASSWORD_FILE") {
        (Some(PathBuf::from(f)), Source::Env("SKYSYNC_DB_PASSWORD_FILE"))
    } else if let Some(f) = credential_file(DB_PASSWORD_CREDENTIAL) {
        (Some(f), Source::Credential(DB_PASSWORD_CREDENTIAL))
    } else if let Some(f) = file {
        (Some(f.to_path_buf()), Source::File)
    } else {
        (None, Source::Missing)
    };
    if let Some(p) = &path {
        read_secret_file(p, NAME)?;
    }
    Ok(Entry { name: NAME, value: path.map(|p| p.display().to_string()), secret: false, source })
}

/// Reads a one-line secret file (refusing one that other users can read).
pub fn read_secret_file(path: &Path, setting: &str) -> Result<String, ConfigError> {
    check_private(path, &format!("{setting} holds a secret"))?;
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::File(format!("cannot read {setting} {}: {e}", path.display())))?;
    let secret = text.trim().to_owned();
    if secret.is_empty() {
        return Err(ConfigError::File(format!("{setting} {} is empty", path.display())));
    }
    Ok(secret)
}

/// Parses the config file. A TOML error names the file, line, column and what was expected,
/// and never quotes the file: the line may hold a secret (an unterminated `client_secret = "…`).
fn parse_config_text(path: &Path, text: &str) -> Result<FileConfig, ConfigError> {
    toml::from_str(text).map_err(|e: toml::de::Error| ConfigError::File(toml_error_message(path, text, &e)))
}

/// `cannot parse FILE: line L, column C: MESSAGE`, with quoted values in the message elided.
fn toml_error_message(path: &Path, text: &str, e: &toml::de::Error) -> String {
    let at = match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: ")
        }
        None => String::new(),
    };
    format!("cannot parse {}: {at}{}", path.display(), elide_quoted(e.message()))
}

/// Replaces every `"…"` in `message` by `"…"`: serde's messages quote the offending value
/// (`invalid type: string "…", expected u64`), which may be a secret in the wrong place.
fn elide_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut inside = false;
    for c in message.chars() {
        match (c, inside) {
            ('"', false) => {
                out.push_str("\"…");
                inside = true;
            }
            ('"', true) => {
                out.push('"');
                inside = false;
            }
            (_, true) => {}
            (c, false) => out.push(c),
        }
    }
    if inside {
        out.push('"');
    }
    out.trim_end().to_owned()
}

/// Refuses a config file that another user could change: writable by group or others, or owned
/// by someone other than this user (or root). Whoever can write it can point `token_url`
/// elsewhere and harvest the client secret and the refresh token.
fn check_config_file(path: &Path) -> Result<(), ConfigError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path)
            .map_err(|e| ConfigError::File(format!("cannot read config file {}: {e}", path.display())))?;
        let mode = meta.mode() & 0o777;
        if mode & 0o022 != 0 {
            return Err(ConfigError::File(format!(
                "config file {} is writable by other users (mode {mode:o}): whoever can change it can redirect \
                 the tokens and the client secret; run `chmod go-w {}`",
                path.display(),
                path.display()
            )));
        }
        let me = rustix::process::geteuid().as_raw();
        if meta.uid() != me && meta.uid() != 0 {
            return Err(ConfigError::File(format!(
                "config file {} is owned by another user (uid {}, this process runs as uid {me}): \
                 whoever owns it can redirect the tokens and the client secret; `chown` it to this user",
                path.display(),
                meta.uid()
            )));
        }
    }
    Ok(())
}

/// Refuses a config file readable by other users when it holds any secret: `client_secret`,
/// `subscription_key`, or a `db` URL with a password.
fn check_secret_fields(path: &Path, p: &ProfileConfig) -> Result<(), ConfigError> {
    let db_password = p.sync.as_ref().and_then(|s| s.db.as_deref()).is_some_and(url_has_password);
    let held: Vec<&str> = [
        ("client_secret", p.client_secret.is_some()),
        ("subscription_key", p.subscription_key.is_some()),
        ("a db URL with a password", db_password),
        ("a token_store URL with a password", p.token_store.as_deref().is_some_and(url_has_password)),
    ]
    .into_iter()
    .filter_map(|(name, held)| held.then_some(name))
    .collect();
    if held.is_empty() {
        return Ok(());
    }
    check_private(path, &format!("the config file holds {}", held.join(" and ")))
}

/// Whether a `postgres://` URL carries a password (in the user info or as `?password=`).
fn url_has_password(db: &str) -> bool {
    Url::parse(db).is_ok_and(|u| u.password().is_some() || u.query_pairs().any(|(k, _)| k == "password"))
}

/// Whether `url`'s host is a loopback address: 127.0.0.0/8, ::1 or `localhost`.
pub fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        // Non-special schemes (`postgres://`) leave IP addresses as opaque host names.
        Some(url::Host::Domain(d)) => {
            d.eq_ignore_ascii_case("localhost") || d.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

impl Resolved {
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
}
