//! The config file: where it is, reading and parsing it, and refusing an unsafe one. What the
//! file says is one layer of [`crate::settings`], which puts the flags and the environment over it.
//!
//! ```toml
//! [profiles.default]
//! client_id = "…"                 # or SKYSYNC_CLIENT_ID
//! client_secret_file = "/etc/skysync/secret"   # or SKYSYNC_CLIENT_SECRET(_FILE)
//! subscription_key = "…"          # or SKYSYNC_SUBSCRIPTION_KEY
//! renewal_window_days = 60
//! client_auth = "basic"          # or SKYSYNC_CLIENT_AUTH: basic | basic-form-encoded | body | none
//! token_key_file = "/etc/skysync/token.key"   # or SKYSYNC_TOKEN_KEY_FILE
//!
//! [profiles.default.sync]
//! entities = ["constituents", "gifts"]
//! ```
//!
//! Loading is two phases: [`locate`] (which file, from `--config`, `SKYSYNC_CONFIG` or the XDG
//! default) and [`load`] (read, check ownership and mode, parse, pick the profile).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use url::Url;

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
    /// More than one required setting has no value: each is a [`ConfigError::Missing`], so one
    /// run lists everything to set.
    #[error("{} settings are missing for profile `{profile}`:\n{}", .missing.len(), list_missing(.missing))]
    MissingSeveral {
        /// The profile.
        profile: String,
        /// Each missing setting.
        missing: Vec<ConfigError>,
    },
}

/// One line per missing setting: the setting, where to set it and where to find its value.
fn list_missing(missing: &[ConfigError]) -> String {
    let lines: Vec<String> = missing
        .iter()
        .map(|m| match m {
            ConfigError::Missing { name, env, file, hint, profile } => {
                format!("  - `{name}`: set {env} or `{name}` under [profiles.{profile}] in {file}. {hint}")
            }
            other => format!("  - {other}"),
        })
        .collect();
    lines.join("\n")
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    profiles: BTreeMap<String, ProfileConfig>,
}

/// One `[profiles.NAME]` table, as written (nothing checked but the types).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct ProfileConfig {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    pub subscription_key: Option<String>,
    pub subscription_key_file: Option<PathBuf>,
    pub db_password_file: Option<PathBuf>,
    /// The token store's key file (as `SKYSYNC_TOKEN_KEY_FILE`; see [`crate::token_crypto`]).
    pub token_key_file: Option<PathBuf>,
    pub token_store: Option<String>,
    pub notify_command: Option<String>,
    pub redirect_uri: Option<String>,
    pub auth_url: Option<String>,
    pub token_url: Option<String>,
    pub api_url: Option<String>,
    pub client_auth: Option<String>,
    pub environment_id: Option<String>,
    pub access_skew_secs: Option<u64>,
    pub renewal_window_days: Option<u64>,
    pub warn_window_days: Option<u64>,
    #[serde(default)]
    pub sync: Option<SyncConfig>,
}

/// The `[profiles.NAME.sync]` table of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncConfig {
    /// Entities synced when the command line names none.
    #[serde(default)]
    pub entities: Vec<String>,
    /// Database: a SQLite path or a `postgres://` URL.
    #[serde(default)]
    pub db: Option<String>,
    /// Client-side pace in calls per second, or `"off"`.
    #[serde(default)]
    pub rate_limit: Option<crate::settings::RateLimit>,
    /// Most API calls one run may make.
    #[serde(default)]
    pub call_budget: Option<u64>,
    /// Most API calls per quota day, over every run (set it to a share of the subscription's
    /// daily quota).
    #[serde(default)]
    pub daily_quota: Option<u64>,
    /// Minutes of overlap for list latency.
    #[serde(default)]
    pub overlap_minutes: Option<u64>,
    /// Days between automatic delete reconciliations.
    #[serde(default)]
    pub reconcile_every_days: Option<u64>,
    /// `mark` (default) or `remove` deleted rows.
    #[serde(default)]
    pub deletes: Option<String>,
    /// Entities synced at the same time (default 4).
    #[serde(default)]
    pub concurrency: Option<usize>,
    /// Seconds a run waits for another run on the same database to finish (default 10).
    #[serde(default)]
    pub lock_wait_secs: Option<u64>,
    /// Most chains one initial or full scan is split into (default 8; 1 turns splitting off).
    #[serde(default)]
    pub partitions: Option<usize>,
    /// Keep replaced versions in `<entity>_history` (`--history`).
    #[serde(default)]
    pub history: Option<bool>,
}

/// The config file of one invocation, with the chosen profile's table.
#[derive(Debug, Clone)]
pub struct LoadedFile {
    /// The file consulted.
    pub path: PathBuf,
    /// Whether it exists (a missing default file is an empty one).
    pub found: bool,
    /// The profile's table (empty when the file or the profile is absent).
    pub profile: ProfileConfig,
}

/// Where to look, from the command line.
#[derive(Debug, Clone, Default)]
pub struct ConfigSource {
    /// `--config` (falls back to `SKYSYNC_CONFIG`, then the XDG default).
    pub path: Option<PathBuf>,
    /// `--profile` (falls back to `SKYSYNC_PROFILE`, then `default`).
    pub profile: Option<String>,
}

/// Environment variables as settings read them: `None` for unset and for blank.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// This process's environment, as an [`Env`].
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Which config file: `--config`, else `SKYSYNC_CONFIG`, else the XDG default. The flag is
/// `Some` when the file was named (then it must exist).
pub fn locate(flag: Option<&Path>, env: Env<'_>) -> Result<(PathBuf, bool), ConfigError> {
    let explicit = flag.map(Path::to_path_buf).or_else(|| env("SKYSYNC_CONFIG").map(PathBuf::from));
    match explicit {
        Some(p) => Ok((p, true)),
        None => default_config_path().map(|p| (p, false)).ok_or_else(|| {
            ConfigError::File("cannot determine the config directory (set HOME or XDG_CONFIG_HOME)".into())
        }),
    }
}

/// Reads `path` (a missing file is empty unless it was named), refuses an unsafe one, parses it
/// and picks `profile`'s table.
pub fn load(path: PathBuf, named: bool, profile: &str) -> Result<LoadedFile, ConfigError> {
    let (file, found) = match std::fs::read_to_string(&path) {
        Ok(text) => {
            check_config_file(&path)?;
            (parse_config_text(&path, &text)?, true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !named => (FileConfig::default(), false),
        Err(e) => return Err(ConfigError::File(format!("cannot read config file {}: {e}", path.display()))),
    };
    let profile = file.profiles.get(profile).cloned().unwrap_or_default();
    check_secret_fields(&path, &profile)?;
    Ok(LoadedFile { path, found, profile })
}

/// Checks that `text` would load as a config file with a `profile` table that parses (used by
/// `config init` and `config set` before they write).
pub fn check_text(path: &Path, text: &str, profile: &str) -> Result<(), ConfigError> {
    let file = parse_config_text(path, text)?;
    if !file.profiles.contains_key(profile) {
        return Err(ConfigError::File(format!("{} has no [profiles.{profile}] table", path.display())));
    }
    Ok(())
}

/// `$CREDENTIALS_DIRECTORY/name`, when systemd passed that credential to this service.
pub fn credential_file(name: &str, env: Env<'_>) -> Option<PathBuf> {
    let dir = env("CREDENTIALS_DIRECTORY")?;
    let path = Path::new(&dir).join(name);
    path.is_file().then_some(path)
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
    profile_name_in(from_cli, &process_env)
}

/// [`profile_name`] with the environment `env`.
pub fn profile_name_in(from_cli: Option<&str>, env: Env<'_>) -> Result<String, ConfigError> {
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
    let path = match path.map(Path::to_path_buf).or_else(|| process_env("SKYSYNC_CONFIG").map(PathBuf::from)) {
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

/// Refuses a secret-bearing file that other users can read.
pub(crate) fn check_private(path: &Path, what: &str) -> Result<(), ConfigError> {
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

// ---------------------------------------------------------------------------------------------
// Hardening of the config file and of where secrets come from (SECURITY.md, "Configuration").

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
pub(crate) fn url_has_password(db: &str) -> bool {
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
