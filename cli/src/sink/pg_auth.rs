//! PostgreSQL authentication: where the password comes from, and which TLS mode protects it.
//!
//! The password never needs to be in the URL (which lands in argv or the config file). In order:
//! 1. the URL's own password (kept for compatibility; `skysync` warns that it is visible),
//! 2. the profile's password file: `SKYSYNC_DB_PASSWORD_FILE`, the `db_password` systemd
//!    credential, or `db_password_file` in the config (resolved by [`crate::config`], passed in
//!    [`super::SinkSpec::Postgres`]),
//! 3. `PGPASSWORD`,
//! 4. a libpq password file: `PGPASSFILE`, else `~/.pgpass` (lines `host:port:db:user:password`,
//!    `*` matches anything, `\:` and `\\` escape; ignored with a warning when group or others can
//!    read it, as libpq does).
//!
//! TLS defaults: for a host that is not loopback the default `sslmode` is `verify-full` against the
//! system roots. `prefer` and `require` without `sslrootcert` still work when written out, with a
//! warning that the server's certificate is not checked. A password is never sent over plain TCP
//! unless `sslmode=disable` was written out: with a password, `prefer` (explicit or the loopback
//! default) becomes `require`.

use std::path::{Path, PathBuf};

use super::pg_tls::{SslMode, TlsSettings};

/// Where the password came from (for the log; never the password itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PasswordSource {
    /// The URL.
    Url,
    /// The profile's password file.
    File(PathBuf),
    /// `PGPASSWORD`.
    Env,
    /// A libpq password file.
    PassFile(PathBuf),
}

/// What [`apply`] decided.
#[derive(Debug)]
pub(crate) struct Auth {
    /// The password, for scrubbing driver messages.
    pub(crate) password: Option<String>,
    /// `prefer` became `require` because a password is to be sent.
    upgraded: bool,
}

impl Auth {
    /// A connection error with the reason TLS was required, when that is why it failed.
    pub(crate) fn explain(&self, mut message: String) -> String {
        if self.upgraded && message.contains("server does not support TLS") {
            message = format!(
                "{}: a password is never sent over an unencrypted connection; enable ssl on the server, \
                 or write sslmode=disable in the URL to send it in the clear (only on a network you trust)",
                message.split("; hint:").next().unwrap_or_default()
            );
        }
        message
    }
}

/// Fills in the password (unless the URL has one; `password_file` is the profile's) and fixes
/// the TLS mode. The error is a sentence for `SinkError::InvalidSpec`.
pub(crate) fn apply(
    url: &url::Url,
    config: &mut tokio_postgres::Config,
    tls: &mut TlsSettings,
    password_file: Option<&Path>,
) -> Result<Auth, String> {
    let (password, source) = match find_password(url, config, password_file)? {
        Some((p, s)) => (Some(p), Some(s)),
        None => (None, None),
    };
    if let (Some(p), Some(source)) = (&password, &source) {
        if *source == PasswordSource::Url {
            tracing::warn!(
                "the PostgreSQL URL holds the password, so it is visible in the process list or the config file; \
                 use PGPASSWORD, ~/.pgpass or db_password_file instead"
            );
        } else {
            tracing::debug!(?source, "PostgreSQL password found");
            config.password(p.as_bytes());
        }
    }
    let upgraded = choose_tls(url, tls, password.is_some());
    Ok(Auth { password, upgraded })
}

/// The password and where it came from, if any source has one.
fn find_password(
    url: &url::Url,
    config: &tokio_postgres::Config,
    password_file: Option<&Path>,
) -> Result<Option<(String, PasswordSource)>, String> {
    if let Some(p) = config.get_password().filter(|p| !p.is_empty()) {
        return Ok(Some((String::from_utf8_lossy(p).into_owned(), PasswordSource::Url)));
    }
    if let Some(file) = password_file {
        let p = crate::config::read_secret_file(file, "db_password_file").map_err(|e| e.to_string())?;
        return Ok(Some((p, PasswordSource::File(file.to_owned()))));
    }
    if let Some(p) = std::env::var("PGPASSWORD").ok().filter(|p| !p.is_empty()) {
        return Ok(Some((p, PasswordSource::Env)));
    }
    let Some(passfile) = passfile_path() else { return Ok(None) };
    let Ok(text) = std::fs::read_to_string(&passfile) else { return Ok(None) };
    if !private_enough(&passfile) {
        tracing::warn!(
            "password file {} has group or world access and is ignored (as libpq does); run `chmod 600 {}`",
            passfile.display(),
            passfile.display()
        );
        return Ok(None);
    }
    let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
    let port = url.port().unwrap_or(5432).to_string();
    let user = config.get_user().unwrap_or_default();
    let db = config.get_dbname().unwrap_or(user);
    Ok(passfile_lookup(&text, host, &port, db, user).map(|p| (p, PasswordSource::PassFile(passfile))))
}

/// `PGPASSFILE`, else `~/.pgpass`.
fn passfile_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PGPASSFILE").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    directories::BaseDirs::new().map(|d| d.home_dir().join(".pgpass"))
}

fn private_enough(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            return meta.permissions().mode() & 0o077 == 0;
        }
    }
    let _ = path;
    true
}

/// The password of the first line of a libpq password file that matches.
pub(crate) fn passfile_lookup(text: &str, host: &str, port: &str, db: &str, user: &str) -> Option<String> {
    for line in text.lines() {
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields = split_passfile_line(line);
        let [h, p, d, u, password] = fields.as_slice() else { continue };
        let matches = |field: &str, value: &str| field == "*" || field == value;
        let host_matches = matches(h, host) || (h == "localhost" && (host == "127.0.0.1" || host == "::1"));
        if host_matches && matches(p, port) && matches(d, db) && matches(u, user) {
            return Some(password.clone());
        }
    }
    None
}

/// Splits on unescaped `:`, undoing `\:` and `\\`.
fn split_passfile_line(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    fields.last_mut().expect("one field").push(next);
                }
            }
            // The password is the last field: colons after the fifth are part of it.
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => fields.last_mut().expect("one field").push(c),
        }
    }
    fields
}

/// Whether `sslmode` was written in the URL.
fn explicit_mode(url: &url::Url) -> bool {
    url.query_pairs().any(|(k, _)| k == "sslmode")
}

/// Applies the defaults described in the module docs. Returns whether `prefer` became `require`.
fn choose_tls(url: &url::Url, tls: &mut TlsSettings, has_password: bool) -> bool {
    let loopback = crate::config::is_loopback_host(url);
    if !explicit_mode(url) && !loopback {
        tls.mode = SslMode::VerifyFull;
    }
    if explicit_mode(url)
        && !loopback
        && matches!(tls.mode, SslMode::Prefer | SslMode::Require)
        && tls.root_cert.is_none()
    {
        tracing::warn!(
            "sslmode={} without sslrootcert encrypts but does not check the server's certificate, so anyone \
             on the path can impersonate the database; use sslmode=verify-full (with sslrootcert for a private CA)",
            if tls.mode == SslMode::Prefer { "prefer" } else { "require" }
        );
    }
    if has_password && tls.mode == SslMode::Prefer {
        // `prefer` would fall back to plain TCP and send the password in the clear.
        tls.mode = SslMode::Require;
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passfile_lines_match_like_libpq() {
        let text = "# comment\n\
                    db.example.org:5432:sky:app:first\n\
                    *:*:other:*:wild\\:card\n\
                    localhost:6000:*:app:loop:with:colons\n";
        assert_eq!(passfile_lookup(text, "db.example.org", "5432", "sky", "app").as_deref(), Some("first"));
        assert_eq!(passfile_lookup(text, "x", "1", "other", "u").as_deref(), Some("wild:card"));
        assert_eq!(passfile_lookup(text, "127.0.0.1", "6000", "d", "app").as_deref(), Some("loop:with:colons"));
        assert_eq!(passfile_lookup(text, "db.example.org", "5433", "sky", "app"), None);
    }

    fn tls_for(url: &str, password: bool) -> TlsSettings {
        let url = url::Url::parse(url).unwrap();
        let mut tls = TlsSettings::from_url(&url).unwrap();
        choose_tls(&url, &mut tls, password);
        tls
    }

    #[test]
    fn remote_hosts_default_to_verify_full_and_passwords_never_go_plain() {
        assert_eq!(tls_for("postgres://u@db.example.org/d", false).mode, SslMode::VerifyFull);
        assert_eq!(tls_for("postgres://u@db.example.org/d?sslmode=require", true).mode, SslMode::Require);
        assert_eq!(tls_for("postgres://u@db.example.org/d?sslmode=prefer", true).mode, SslMode::Require);
        assert_eq!(tls_for("postgres://u@db.example.org/d?sslmode=disable", true).mode, SslMode::Disable);
        assert_eq!(tls_for("postgres://u@127.0.0.1/d", false).mode, SslMode::Prefer);
        assert_eq!(tls_for("postgres://u@127.0.0.1/d", true).mode, SslMode::Require);
        assert_eq!(tls_for("postgres://u@localhost/d?sslmode=prefer", true).mode, SslMode::Require);
    }
}
