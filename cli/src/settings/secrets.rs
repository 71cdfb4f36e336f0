//! Where the secrets and the files that hold them come from (SECURITY.md, "Configuration"):
//! the environment, a file named in the environment, a systemd credential, then the config file.

use std::path::{Path, PathBuf};

use super::{Entry, Source};
use crate::config::{ConfigError, Env, credential_file, read_secret_file};
use crate::token_crypto::{KEY_CREDENTIAL, KEY_FILE_ENV};

/// Where one secret may come from, in this order: the environment variable with the value, the
/// environment variable naming a file, the systemd credential, the config file's value, the
/// config file's `*_file` setting.
pub(super) struct SecretSetting {
    name: &'static str,
    env: &'static str,
    env_file: &'static str,
    file_key: &'static str,
    /// The name under `$CREDENTIALS_DIRECTORY` (`LoadCredential=NAME:/path`).
    credential: &'static str,
}

pub(super) const CLIENT_SECRET: SecretSetting = SecretSetting {
    name: "client_secret",
    env: "SKYSYNC_CLIENT_SECRET",
    env_file: "SKYSYNC_CLIENT_SECRET_FILE",
    file_key: "client_secret_file",
    credential: "client_secret",
};

pub(super) const SUBSCRIPTION_KEY: SecretSetting = SecretSetting {
    name: "subscription_key",
    env: "SKYSYNC_SUBSCRIPTION_KEY",
    env_file: "SKYSYNC_SUBSCRIPTION_KEY_FILE",
    file_key: "subscription_key_file",
    credential: "subscription_key",
};

/// The systemd credential holding the PostgreSQL password.
pub const DB_PASSWORD_CREDENTIAL: &str = "db_password";

/// The entry of one secret, read from wherever [`SecretSetting`] says it is.
pub(super) fn secret_entry(
    s: &SecretSetting,
    value: Option<String>,
    file: Option<&Path>,
    env: Env<'_>,
) -> Result<Entry, ConfigError> {
    let entry = |value: String, source| Entry { name: s.name, value: Some(value), secret: true, source };
    Ok(if let Some(v) = env(s.env) {
        entry(v, Source::Env(s.env))
    } else if let Some(f) = env(s.env_file) {
        entry(read_secret_file(Path::new(&f), s.env_file)?, Source::Env(s.env_file))
    } else if let Some(f) = credential_file(s.credential, env) {
        entry(read_secret_file(&f, "the systemd credential")?, Source::Credential(s.credential))
    } else if let Some(v) = value {
        entry(v, Source::File)
    } else if let Some(f) = file {
        entry(read_secret_file(f, s.file_key)?, Source::File)
    } else {
        Entry { name: s.name, value: None, secret: true, source: Source::Missing }
    })
}

/// A file naming setting: the environment variable, else the systemd credential, else the
/// config file's key.
fn file_entry(
    name: &'static str,
    var: &'static str,
    credential: &'static str,
    file: Option<&Path>,
    env: Env<'_>,
) -> Entry {
    let (path, source) = if let Some(f) = env(var) {
        (Some(PathBuf::from(f)), Source::Env(var))
    } else if let Some(f) = credential_file(credential, env) {
        (Some(f), Source::Credential(credential))
    } else if let Some(f) = file {
        (Some(f.to_path_buf()), Source::File)
    } else {
        (None, Source::Missing)
    };
    Entry { name, value: path.map(|p| p.display().to_string()), secret: false, source }
}

/// The file holding the PostgreSQL password (not the password: the sink reads it when it
/// connects). `SKYSYNC_DB_PASSWORD_FILE`, else the `db_password` credential, else the config's
/// `db_password_file`. Checked here, so an unsafe file is a configuration error (exit 3).
pub(super) fn db_password_file_entry(file: Option<&Path>, env: Env<'_>) -> Result<Entry, ConfigError> {
    const NAME: &str = "db_password_file";
    let entry = file_entry(NAME, "SKYSYNC_DB_PASSWORD_FILE", DB_PASSWORD_CREDENTIAL, file, env);
    if let Some(p) = &entry.value {
        read_secret_file(Path::new(p), NAME)?;
    }
    Ok(entry)
}

/// The token store's key file: `SKYSYNC_TOKEN_KEY_FILE`, else the `skysync-token-key`
/// credential, else the config's `token_key_file`. The key is read (and a key others can read is
/// refused, exit 3) where the store is used, the same for each source: see
/// [`crate::token_crypto`].
pub(super) fn token_key_file_entry(file: Option<&Path>, env: Env<'_>) -> Entry {
    file_entry("token_key_file", KEY_FILE_ENV, KEY_CREDENTIAL, file, env)
}
