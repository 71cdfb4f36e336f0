use std::path::PathBuf;

use super::pg_tls::{RootCert, SslMode, TlsSettings, strip_handled_params};
use super::spec::{redact_url, scrub, url_secrets};
use super::*;

fn row(id: &str, data: &str, dm: Option<&str>) -> Row {
    Row { id: id.to_owned(), date_modified: dm.map(str::to_owned), data: RecordJson::new(data).unwrap() }
}

#[test]
fn normalize_timestamp_converts_offsets_to_fixed_width_utc() {
    assert_eq!(
        normalize_timestamp("2016-05-05T17:59:31.1600745-04:00").as_deref(),
        Some("2016-05-05T21:59:31.160074Z")
    );
    assert_eq!(normalize_timestamp("2020-01-02T03:04:05Z").as_deref(), Some("2020-01-02T03:04:05.000000Z"));
    assert_eq!(normalize_timestamp("1600-01-01 00:00:00.000 +00:00").as_deref(), Some("1600-01-01T00:00:00.000000Z"));
    assert_eq!(normalize_timestamp("yesterday"), None);
    assert_eq!(normalize_timestamp(""), None);
}

#[test]
fn normalized_timestamps_sort_like_times() {
    let a = normalize_timestamp("2020-01-02T03:04:05Z").unwrap();
    let b = normalize_timestamp("2020-01-02T03:04:05.5Z").unwrap();
    let c = normalize_timestamp("2020-01-02T00:04:06-03:00").unwrap();
    assert!(a < b && b < c, "{a} {b} {c}");
}

#[test]
fn page_rows_keeps_the_last_occurrence_of_an_id() {
    let rows = [
        row("1", r#"{"v":1}"#, None),
        row("2", r#"{"v":2}"#, Some("2020-01-01T00:00:00Z")),
        row("1", r#"{"v":3}"#, Some("bogus")),
    ];
    let out = page_rows(&rows);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].id, "2");
    assert_eq!(out[0].date_modified.as_deref(), Some("2020-01-01T00:00:00.000000Z"));
    assert_eq!(out[1].id, "1");
    assert_eq!(out[1].data, r#"{"v":3}"#);
    assert_eq!(out[1].date_modified, None);
}

#[test]
fn entity_accepts_only_exact_catalog_names() {
    assert_eq!(entity("gifts").unwrap().name, "gifts");
    assert!(matches!(entity("Gifts"), Err(SinkError::UnknownEntity(_))));
    assert!(matches!(entity("gifts; DROP TABLE x"), Err(SinkError::UnknownEntity(_))));
    assert!(matches!(entity("sync_state"), Err(SinkError::UnknownEntity(_))));
}

#[test]
fn quote_ident_doubles_quotes() {
    assert_eq!(quote_ident("gifts"), "\"gifts\"");
    assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
}

#[test]
fn redact_url_drops_the_password_and_keeps_the_rest() {
    assert_eq!(
        redact_url("postgres://sky:s3cr%40t@db.example:5432/sky?sslmode=disable"),
        "postgres://sky@db.example:5432/sky?sslmode=disable"
    );
    assert_eq!(redact_url("postgres://sky@db/x"), "postgres://sky@db/x");
    assert_eq!(
        redact_url("postgres://sky@db/x?password=hunter2&application_name=s"),
        "postgres://sky@db/x?application_name=s"
    );
    assert_eq!(redact_url("postgres://sky@db/x?password=hunter2"), "postgres://sky@db/x");
    assert_eq!(url_secrets("postgres://sky@db/x?password=hunter2"), vec!["hunter2".to_owned()]);
    // Unparseable: everything before the last '@' goes.
    let r = redact_url("postgres://u:p@ss w@rd@host:99999/db");
    assert!(!r.contains("ss w") && !r.contains(":p"), "{r}");
}

#[test]
fn secrets_are_found_raw_and_decoded_and_scrubbed() {
    let s = url_secrets("postgres://u:p%40ss@h/db");
    assert_eq!(s, vec!["p%40ss".to_owned(), "p@ss".to_owned()]);
    assert_eq!(scrub("bad p@ss and p%40ss", &s), "bad *** and ***");
    assert!(url_secrets("postgres://u@h/db").is_empty());
}

fn parse(db: Option<&str>, format: Option<&str>, out: Option<&str>) -> Result<SinkSpec, SinkError> {
    SinkSpec::parse(db, format, out, PathBuf::from("/default/skysync.db"))
}

#[test]
fn spec_parse_cases() {
    assert_eq!(parse(None, None, None).unwrap(), SinkSpec::Sqlite("/default/skysync.db".into()));
    assert_eq!(parse(Some("data/x.db"), None, None).unwrap(), SinkSpec::Sqlite("data/x.db".into()));
    assert_eq!(parse(Some("sqlite:///var/x.db"), Some("db"), None).unwrap(), SinkSpec::Sqlite("/var/x.db".into()));
    assert_eq!(
        parse(Some("postgresql://u:pw@h/db"), None, None).unwrap(),
        SinkSpec::postgres("postgresql://u:pw@h/db")
    );
    assert_eq!(parse(None, Some("JSONL"), Some("-")).unwrap(), SinkSpec::Jsonl(JsonlOut::Stdout));
    assert_eq!(parse(None, Some("jsonl"), Some("out")).unwrap(), SinkSpec::Jsonl(JsonlOut::Dir("out".into())));
    for (db, format, out) in [
        (None, Some("jsonl"), None),
        (Some("x.db"), Some("jsonl"), Some("dir")),
        (None, None, Some("dir")),
        (None, Some("csv"), None),
        (Some(""), None, None),
        (Some("sqlite://"), None, None),
        (Some("mysql://h/db"), None, None),
        (Some("postgres://u:pw@/db"), None, None),
        (Some("postgres//u:pw@h/db"), None, None),
        (Some("PostgreSQL:/db"), None, None),
    ] {
        let e = parse(db, format, out).unwrap_err();
        assert!(matches!(e, SinkError::InvalidSpec(_)), "{db:?} {format:?} {out:?}: {e}");
        assert!(!e.to_string().contains("pw"), "{e}");
    }
    assert_eq!(parse(Some("./postgres/x.db"), None, None).unwrap(), SinkSpec::Sqlite("./postgres/x.db".into()));
}

#[test]
fn spec_accepts_libpq_sslmodes_and_refuses_the_rest_without_leaking_the_password() {
    for mode in ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] {
        let url = format!("postgres://u:hunter2@h/db?sslmode={mode}&sslrootcert=/etc/ca.pem");
        assert_eq!(parse(Some(&url), None, None).unwrap(), SinkSpec::postgres(url.clone()));
    }
    for (query, expect) in [
        ("sslmode=verify", "disable, prefer (the default), require, verify-ca or verify-full"),
        ("sslmode=REQUIRE", "not a valid sslmode"),
        ("sslrootcert=", "sslrootcert is empty"),
        ("sslcert=/c.pem&sslkey=/k.pem", "sslcert is not supported"),
    ] {
        let e = parse(Some(&format!("postgres://u:hunter2@h/db?{query}")), None, None).unwrap_err();
        assert!(matches!(e, SinkError::InvalidSpec(_)), "{query}: {e}");
        let text = format!("{e} {e:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains(expect) && text.contains("u@h/db"), "{query}: {text}");
    }
}

#[test]
fn tls_settings_default_to_prefer_and_read_sslrootcert() {
    let settings = |q: &str| TlsSettings::from_url(&url::Url::parse(&format!("postgres://h/db{q}")).unwrap()).unwrap();
    assert_eq!(settings(""), TlsSettings { mode: SslMode::Prefer, root_cert: None });
    assert_eq!(settings("?sslmode=allow").mode, SslMode::Prefer);
    assert_eq!(
        settings("?sslmode=verify-full&sslrootcert=/etc/my%20ca.pem"),
        TlsSettings { mode: SslMode::VerifyFull, root_cert: Some(RootCert::File("/etc/my ca.pem".into())) }
    );
    assert_eq!(settings("?sslmode=verify-ca&sslrootcert=system").root_cert, Some(RootCert::System));
    assert_eq!(settings("?sslmode=verify-ca").mode.driver_mode(), tokio_postgres::config::SslMode::Require);
    assert_eq!(settings("?sslmode=disable").mode.driver_mode(), tokio_postgres::config::SslMode::Disable);
}

#[test]
fn tls_params_are_stripped_before_the_driver_sees_the_url() {
    assert_eq!(strip_handled_params("postgres://u:p@h/db"), "postgres://u:p@h/db");
    assert_eq!(
        strip_handled_params("postgres://u:p@h/db?sslmode=verify-full&sslrootcert=/ca.pem"),
        "postgres://u:p@h/db"
    );
    assert_eq!(
        strip_handled_params(
            "postgres://u:p@h/db?sslmode=require&connect_timeout=5&sslrootcert=x&application_name=a%26b"
        ),
        "postgres://u:p@h/db?connect_timeout=5&application_name=a%26b"
    );
    // What remains parses in tokio-postgres, which knows neither verify-* nor sslrootcert.
    let rest = strip_handled_params("postgres://u@h:5433/db?sslmode=verify-ca&sslrootcert=/ca.pem&connect_timeout=5");
    let config: tokio_postgres::Config = rest.parse().unwrap();
    assert_eq!(config.get_connect_timeout(), Some(&std::time::Duration::from_secs(5)));
}

#[test]
fn connectors_build_for_every_mode_with_an_explicit_provider() {
    // No process-default CryptoProvider is installed here (ring and aws-lc-rs are both linked):
    // building must not depend on one.
    for mode in [SslMode::Disable, SslMode::Prefer, SslMode::Require, SslMode::VerifyCa, SslMode::VerifyFull] {
        TlsSettings { mode, root_cert: None }.connector().unwrap();
        TlsSettings { mode, root_cert: Some(RootCert::System) }.connector().unwrap();
    }
    let Err(e) =
        TlsSettings { mode: SslMode::VerifyFull, root_cert: Some(RootCert::File("/nonexistent/ca.pem".into())) }
            .connector()
    else {
        panic!("a missing sslrootcert must fail")
    };
    assert!(e.contains("sslrootcert /nonexistent/ca.pem"), "{e}");
}

#[test]
fn spec_debug_hides_the_password() {
    let s = parse(Some("postgres://u:hunter2@h/db"), None, None).unwrap();
    let d = format!("{s:?} {}", s.describe());
    assert!(!d.contains("hunter2"), "{d}");
    assert!(d.contains("u@h"), "{d}");
}

#[test]
fn entity_state_serializes_times_as_rfc3339() {
    let mut s = EntityState::new("gifts");
    s.last_run_at = Some(time::macros::datetime!(2024-03-01 12:00 UTC));
    let v = serde_json::to_value(&s).unwrap();
    assert_eq!(v["last_run_at"], "2024-03-01T12:00:00Z");
    assert_eq!(v["bookmark"], serde_json::Value::Null);
    let back: EntityState = serde_json::from_value(v).unwrap();
    assert_eq!(back, s);
}
