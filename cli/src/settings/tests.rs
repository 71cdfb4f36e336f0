//! The precedence rule, once, and the settings built on it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Parser;

use super::*;
use crate::args::SyncArgs;
use crate::args::{Cli, Command};
use crate::config::ProfileConfig;
use crate::sink::DeleteMode;
use crate::token_crypto::KEY_FILE_ENV;

#[test]
fn a_flag_beats_the_environment_beats_the_file_beats_the_default() {
    let all = layered(Some((1, "--n")), Some((2, "N")), Some(3), Some(4));
    assert_eq!(all, (Some(1), Source::Flag("--n")));
    assert_eq!(layered(None, Some((2, "N")), Some(3), Some(4)), (Some(2), Source::Env("N")));
    assert_eq!(layered(None, None, Some(3), Some(4)), (Some(3), Source::File));
    assert_eq!(layered(None, None, None, Some(4)), (Some(4), Source::Default));
    assert_eq!(layered::<u8>(None, None, None, None), (None, Source::Missing));
}

fn file(profile: ProfileConfig) -> LoadedFile {
    LoadedFile { path: PathBuf::from("/nonexistent/config.toml"), found: true, profile }
}

fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: BTreeMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    move |name| map.get(name).cloned()
}

#[test]
fn settings_resolve_takes_the_layers_as_values() {
    let profile = ProfileConfig {
        client_id: Some("file-app".into()),
        api_url: Some("https://file.example/api".into()),
        token_key_file: Some("/file/key".into()),
        ..ProfileConfig::default()
    };
    let env = env_of(&[("SKYSYNC_CLIENT_ID", "env-app"), ("SKYSYNC_PROFILE", "env-profile")]);
    let args = ConfigSource { path: None, profile: Some("flag-profile".into()) };
    let resolved = Resolved::layer(&args, file(profile.clone()), &env).unwrap();
    assert_eq!(resolved.profile, "flag-profile", "the flag over SKYSYNC_PROFILE");
    let s = Settings::resolve(&args, file(profile), &env).unwrap();
    assert_eq!(s.client_id, "env-app", "the environment over the file");
    assert_eq!(s.endpoints.api.as_str(), "https://file.example/api/", "the file over the default");
    assert_eq!(s.endpoints.token.as_str(), BLACKBAUD_TOKEN_URL, "the default");
    assert_eq!(s.token_key_file, Some(PathBuf::from("/file/key")));
    assert_eq!(resolved.entry("token_key_file").unwrap().source, Source::File);
    let env = env_of(&[("SKYSYNC_CLIENT_ID", "x"), (KEY_FILE_ENV, "/env/key")]);
    let r = Resolved::layer(&ConfigSource::default(), file(ProfileConfig::default()), &env).unwrap();
    assert_eq!(r.token_key_file(), Some(PathBuf::from("/env/key")));
    assert_eq!(r.entry("token_key_file").unwrap().source, Source::Env(KEY_FILE_ENV));
    assert_eq!(r.profile, "default");
}

fn sync_args(argv: &[&str]) -> SyncArgs {
    let mut full = vec!["skysync", "sync"];
    full.extend_from_slice(argv);
    match Cli::try_parse_from(full).unwrap().command {
        Command::Sync(a) => a,
        other => panic!("{other:?}"),
    }
}

#[test]
fn sync_flags_beat_the_sync_table_beats_the_defaults() {
    let table = SyncConfig {
        rate_limit: Some(RateLimit::PerSecond(2.0)),
        concurrency: Some(3),
        lock_wait_secs: Some(7),
        ..SyncConfig::default()
    };
    let s = SyncSettings::resolve(&sync_args(&["--concurrency", "5"]), &table).unwrap();
    assert_eq!((s.concurrency, s.rate_limit, s.lock_wait), (5, 2.0, Duration::from_secs(7)));
    let s = SyncSettings::resolve(&sync_args(&[]), &SyncConfig::default()).unwrap();
    assert_eq!((s.concurrency, s.rate_limit, s.deletes), (DEFAULT_CONCURRENCY, DEFAULT_RATE_LIMIT, DeleteMode::Mark));
}

#[test]
fn zero_concurrency_is_refused_naming_where_it_came_from() {
    let flag = SyncSettings::resolve(&sync_args(&["--concurrency", "0"]), &SyncConfig::default()).unwrap_err();
    assert!(flag.0.starts_with("--concurrency must be at least 1"), "{flag}");
    let table = SyncConfig { concurrency: Some(0), ..SyncConfig::default() };
    let file = SyncSettings::resolve(&sync_args(&[]), &table).unwrap_err();
    assert!(file.0.contains("`concurrency`") && file.0.contains("at least 1"), "{file}");
    let zero = SyncConfig { rate_limit: Some(RateLimit::PerSecond(0.0)), ..SyncConfig::default() };
    let file = SyncSettings::resolve(&sync_args(&[]), &zero).unwrap_err();
    assert!(file.0.contains("`rate_limit`") && file.0.contains(r#"write `rate_limit = "off"` instead"#), "{file}");
    let flag = SyncSettings::resolve(&sync_args(&["--rate-limit", "0"]), &SyncConfig::default()).unwrap_err();
    assert!(flag.0.starts_with("--rate-limit must be more than 0") && flag.0.contains("`--rate-limit off`"), "{flag}");
    let off = SyncSettings::resolve(&sync_args(&["--rate-limit", "off"]), &zero).unwrap();
    assert_eq!(off.rate_limit, 0.0, "off is the unpaced pacer, and the flag wins over the file");
    let env = env_of(&[(RATE_LIMIT_ENV, "0")]);
    let from_env = SyncSettings::resolve_in(&sync_args(&[]), &SyncConfig::default(), &env).unwrap_err();
    assert!(from_env.0.contains("`SKYSYNC_RATE_LIMIT=off`"), "{from_env}");
    let env = env_of(&[(RATE_LIMIT_ENV, "off")]);
    assert_eq!(SyncSettings::resolve_in(&sync_args(&[]), &zero, &env).unwrap().rate_limit, 0.0);
    let deletes = SyncConfig { deletes: Some("purge".into()), ..SyncConfig::default() };
    let file = SyncSettings::resolve(&sync_args(&[]), &deletes).unwrap_err();
    assert!(file.0.contains("`deletes`"), "{file}");
}

#[test]
fn history_comes_from_the_flag_then_the_environment_then_the_sync_table_then_off() {
    let on = SyncConfig { history: Some(true), ..SyncConfig::default() };
    let off = SyncConfig { history: Some(false), ..SyncConfig::default() };
    let none = env_of(&[]);
    let history = |argv: &[&str], table: &SyncConfig, env: &dyn Fn(&str) -> Option<String>| {
        SyncSettings::resolve_in(&sync_args(argv), table, env).unwrap().history
    };
    assert!(!history(&[], &SyncConfig::default(), &none), "off by default");
    assert!(history(&[], &on, &none), "the [sync] table");
    assert!(!history(&[], &on, &env_of(&[(HISTORY_ENV, "0")])), "the environment over the table");
    assert!(history(&[], &off, &env_of(&[(HISTORY_ENV, "true")])), "the environment over the table");
    assert!(history(&["--history"], &off, &env_of(&[(HISTORY_ENV, "no")])), "the flag over everything");
    let bad = SyncSettings::resolve_in(&sync_args(&[]), &on, &env_of(&[(HISTORY_ENV, "maybe")])).unwrap_err();
    assert!(bad.0.contains(HISTORY_ENV) && bad.0.contains("maybe"), "{bad}");
}
