//! Choosing a sink from the command line (`--db`, `--format`, `--out`).

use std::fmt;
use std::path::PathBuf;

use super::SinkError;

/// Where JSON lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonlOut {
    /// `DIR/<entity>.jsonl` plus `DIR/sync_state.json`.
    Dir(PathBuf),
    /// Standard output, no saved state.
    Stdout,
}

/// A parsed sink choice. `Debug` never shows a PostgreSQL password.
#[derive(Clone, PartialEq, Eq)]
pub enum SinkSpec {
    /// A SQLite database file (created with its parent directories).
    Sqlite(PathBuf),
    /// A PostgreSQL database.
    Postgres {
        /// The `postgres://` URL (libpq's `sslmode` and `sslrootcert` choose TLS).
        url: String,
        /// The profile's password file (`db_password_file`, `SKYSYNC_DB_PASSWORD_FILE` or the
        /// `db_password` systemd credential), read when the sink connects. See [`super::pg_auth`].
        password_file: Option<PathBuf>,
    },
    /// JSON lines.
    Jsonl(JsonlOut),
}

impl fmt::Debug for SinkSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SinkSpec::Sqlite(p) => f.debug_tuple("Sqlite").field(p).finish(),
            SinkSpec::Postgres { url, password_file } => {
                f.debug_struct("Postgres").field("url", &redact_url(url)).field("password_file", password_file).finish()
            }
            SinkSpec::Jsonl(out) => f.debug_tuple("Jsonl").field(out).finish(),
        }
    }
}

impl SinkSpec {
    /// PostgreSQL at `url`, with no password file.
    pub fn postgres(url: impl Into<String>) -> Self {
        SinkSpec::Postgres { url: url.into(), password_file: None }
    }

    /// The same spec; a PostgreSQL one reads its password from `file` (when the URL has none).
    /// Other sinks have no password and ignore it.
    pub fn with_password_file(self, file: Option<PathBuf>) -> Self {
        match self {
            SinkSpec::Postgres { url, .. } => SinkSpec::Postgres { url, password_file: file },
            other => other,
        }
    }

    /// Interprets `--db`, `--format` and `--out`.
    ///
    /// - `--db postgres://…` or `postgresql://…` → PostgreSQL; `--db PATH` or `sqlite://PATH` →
    ///   SQLite; no `--db` → SQLite at `default_sqlite`.
    /// - `--format jsonl --out DIR` (or `--out -` for stdout) → JSON lines; `--format db` (or none)
    ///   → the database.
    pub fn parse(
        db: Option<&str>,
        format: Option<&str>,
        out: Option<&str>,
        default_sqlite: PathBuf,
    ) -> Result<Self, SinkError> {
        let invalid = |m: String| Err(SinkError::InvalidSpec(m));
        match format.map(|f| f.trim().to_ascii_lowercase()).as_deref() {
            None | Some("db") => {
                if out.is_some() {
                    return invalid("--out is only used with --format jsonl (databases are chosen with --db)".into());
                }
                match db {
                    None => Ok(SinkSpec::Sqlite(default_sqlite)),
                    Some(db) => parse_db(db),
                }
            }
            Some("jsonl") => {
                if db.is_some() {
                    return invalid(
                        "--db and --format jsonl are exclusive: JSON lines go to --out, not a database".into(),
                    );
                }
                match out.map(str::trim) {
                    None | Some("") => invalid(
                        "--format jsonl needs --out DIR (one DIR/<entity>.jsonl per entity) or --out - (stdout)".into(),
                    ),
                    Some("-") => Ok(SinkSpec::Jsonl(JsonlOut::Stdout)),
                    Some(dir) => Ok(SinkSpec::Jsonl(JsonlOut::Dir(PathBuf::from(dir)))),
                }
            }
            Some(other) => {
                invalid(format!("unknown --format {other:?}: expected db (SQLite or PostgreSQL via --db) or jsonl"))
            }
        }
    }

    /// The same as `describe()` of the opened sink would say, without opening it.
    pub fn describe(&self) -> String {
        match self {
            SinkSpec::Sqlite(p) => format!("SQLite {}", p.display()),
            SinkSpec::Postgres { url, .. } => format!("PostgreSQL {}", redact_url(url)),
            SinkSpec::Jsonl(JsonlOut::Dir(d)) => format!("JSON lines in {}", d.display()),
            SinkSpec::Jsonl(JsonlOut::Stdout) => super::jsonl::STDOUT_DESCRIPTION.to_owned(),
        }
    }
}

fn parse_db(db: &str) -> Result<SinkSpec, SinkError> {
    let db = db.trim();
    if db.is_empty() {
        return Err(SinkError::InvalidSpec("--db is empty: give a SQLite file path or a postgres:// URL".into()));
    }
    let lower = db.to_ascii_lowercase();
    if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
        check_pg_url(db)?;
        return Ok(SinkSpec::postgres(db));
    }
    if lower.starts_with("sqlite://") {
        let path = &db["sqlite://".len()..];
        if path.is_empty() {
            return Err(SinkError::InvalidSpec(
                "sqlite:// needs a path, e.g. sqlite:///var/lib/skysync/skysync.db".into(),
            ));
        }
        return Ok(SinkSpec::Sqlite(PathBuf::from(path)));
    }
    // `postgres//host/db`, `postgresql:/db`: a mistyped URL would otherwise become a SQLite file
    // in a directory named `postgres` and a sync that "succeeds" into the wrong place.
    if ["postgres:", "postgresql:", "postgres/", "postgresql/"].iter().any(|p| lower.starts_with(p)) {
        return Err(SinkError::InvalidSpec(format!(
            "--db {} looks like a mistyped PostgreSQL URL: write postgres://user@host/dbname \
             (a SQLite file named like this needs a ./ prefix)",
            redact_url(db)
        )));
    }
    if let Some((scheme, _)) = db.split_once("://") {
        return Err(SinkError::InvalidSpec(format!(
            "unsupported database URL scheme {scheme:?}: use postgres://, sqlite:// or a file path"
        )));
    }
    Ok(SinkSpec::Sqlite(PathBuf::from(db)))
}

/// Validates a PostgreSQL URL; errors never repeat the password.
pub(crate) fn check_pg_url(raw: &str) -> Result<url::Url, SinkError> {
    let url = url::Url::parse(raw)
        .map_err(|e| SinkError::InvalidSpec(format!("PostgreSQL URL {} is not valid: {e}", redact_url(raw))))?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err(SinkError::InvalidSpec(format!("PostgreSQL URL {} has no host", redact_url(raw))));
    }
    super::pg_tls::TlsSettings::from_url(&url)
        .map_err(|m| SinkError::InvalidSpec(format!("PostgreSQL URL {}: {m}", redact_url(raw))))?;
    Ok(url)
}

/// A PostgreSQL URL without its password (the user stays, so the target is still recognisable).
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) => {
            if url.password().is_some() {
                // set_password only fails for URLs that cannot have one, which then have none.
                let _ = url.set_password(None);
            }
            // libpq-style URLs may also carry `?password=…`.
            if url.query_pairs().any(|(k, _)| k == "password") {
                let kept: Vec<(String, String)> = url
                    .query_pairs()
                    .filter(|(k, _)| k != "password")
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect();
                if kept.is_empty() {
                    url.set_query(None);
                } else {
                    url.query_pairs_mut().clear().extend_pairs(kept);
                }
            }
            url.to_string()
        }
        Err(_) => {
            // Not parseable: keep the scheme and host part after the last '@' only.
            let (scheme, rest) = raw.split_once("://").unwrap_or(("postgres", raw));
            let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
            format!("{scheme}://{host}")
        }
    }
}

/// The password of a PostgreSQL URL, raw and percent-decoded, for scrubbing driver messages.
pub(crate) fn url_secrets(raw: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(url) = url::Url::parse(raw) {
        if let Some(p) = url.password().filter(|p| !p.is_empty()) {
            out.push(p.to_owned());
            if let Ok(decoded) = percent_decode(p)
                && decoded != p
            {
                out.push(decoded);
            }
        }
        for (k, v) in url.query_pairs() {
            if k == "password" && !v.is_empty() {
                out.push(v.into_owned());
            }
        }
    }
    out
}

fn percent_decode(s: &str) -> Result<String, std::string::FromUtf8Error> {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out)
}

/// Replaces every occurrence of a secret in `msg`.
pub(crate) fn scrub(msg: &str, secrets: &[String]) -> String {
    let mut m = msg.to_owned();
    for s in secrets {
        m = m.replace(s.as_str(), "***");
    }
    m
}
