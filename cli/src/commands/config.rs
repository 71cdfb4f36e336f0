//! `skysync config show|path|init|set`.
//!
//! `init` and `set` write the config file the way the token store writes tokens: a temporary file
//! in the same directory (mode 0600), fsync, rename; and they refuse what they could not take back
//! (an existing profile without `--force`, a secret as an argument, a file that would not load),
//! changing nothing. Secrets never go in by these commands: they name a file holding the secret
//! (SECURITY.md, "Configuration").

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::Args;
use skysync_core::config::DEFAULT_REDIRECT_URI;

use crate::args::{ConfigCommand, GlobalArgs};
use crate::config::ConfigSource;
use crate::context::Output;
use crate::exit::{self, UsageError};
use crate::settings::{
    DEFAULT_CONCURRENCY, DEFAULT_LOCK_WAIT_SECS, DEFAULT_RATE_LIMIT, RATE_LIMIT_ENV, RateLimit, Resolved, Source,
    resolve,
};

/// `skysync config init`.
#[derive(Debug, Clone, Args)]
#[command(after_help = "\
Without flags on a terminal, init asks for each value; otherwise it writes what the flags give
and leaves the rest commented out. Secrets are not written into the config: give the files that
hold them (one line, mode 0600), or use SKYSYNC_CLIENT_SECRET_FILE / SKYSYNC_SUBSCRIPTION_KEY_FILE
or systemd credentials.

Examples:
  skysync config init
  skysync config init --client-id ID --client-secret-file /etc/skysync/client_secret \\
      --subscription-key-file /etc/skysync/subscription_key
  skysync --profile acme config init --client-id ID --db 'postgres://skysync@db.internal/sky'")]
pub struct InitArgs {
    /// The application's \"Application ID\" (developer.blackbaud.com → My applications).
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    /// A file holding the application secret (not the secret itself).
    #[arg(long, value_name = "PATH")]
    pub client_secret_file: Option<PathBuf>,
    /// A file holding the subscription key (developer.blackbaud.com/subscriptions).
    #[arg(long, value_name = "PATH")]
    pub subscription_key_file: Option<PathBuf>,
    /// The redirect URI registered with the application [default: http://localhost:8321/callback].
    #[arg(long, value_name = "URL")]
    pub redirect_uri: Option<String>,
    /// Where `sync` writes: a SQLite path or a postgres:// URL without a password [default: SQLite
    /// under the profile's data directory].
    #[arg(long, value_name = "PATH|URL")]
    pub db: Option<String>,
    /// Entities `sync` syncs when none are named [default: constituents,gifts].
    #[arg(long, value_name = "ENTITY,…", value_delimiter = ',')]
    pub entities: Vec<String>,
    /// Replace the profile when the config file already has it.
    #[arg(long)]
    pub force: bool,
    /// Ask nothing, even on a terminal.
    #[arg(long)]
    pub no_input: bool,
    /// `--json`.
    #[command(flatten)]
    pub json: crate::args::JsonArgs,
    /// `--config`, `--profile`.
    #[command(flatten)]
    pub profile: crate::args::ProfileArgs,
}

/// `skysync config set`.
#[derive(Debug, Clone, Args)]
#[command(after_help = "\
KEY is a setting of the profile's table (client_id, client_secret_file, api_url, …) or of its
[sync] table as sync.KEY (sync.db, sync.entities, sync.rate_limit, …). Lists take commas:
`sync.entities constituents,gifts`. Comments and layout of the file are kept. Secrets are
refused as arguments (they would show in `ps` and the shell history): set client_secret_file.

Examples:
  skysync config set client_id 00000000-0000-0000-0000-000000000000
  skysync config set client_secret_file /etc/skysync/client_secret
  skysync config set sync.entities constituents,gifts,funds
  skysync --profile acme config set sync.rate_limit 2")]
pub struct SetArgs {
    /// The setting: `client_id`, `sync.db`, …
    #[arg(value_name = "KEY")]
    pub key: String,
    /// Its value.
    #[arg(value_name = "VALUE")]
    pub value: String,
    /// `--json`.
    #[command(flatten)]
    pub json: crate::args::JsonArgs,
    /// `--config`, `--profile`.
    #[command(flatten)]
    pub profile: crate::args::ProfileArgs,
}

/// Prints the effective settings (secrets masked, with their sources) or the file's path; writes
/// or edits the file.
pub fn run(g: &GlobalArgs, cmd: ConfigCommand) -> anyhow::Result<u8> {
    let out = Output::detect(g.json);
    let source = crate::commands::config_source(g);
    let target = || -> anyhow::Result<(PathBuf, String)> {
        let profile = crate::config::profile_name(g.profile())?;
        let (path, _) = crate::config::locate(source.path.as_deref(), &crate::config::process_env)?;
        Ok((path, profile))
    };
    match cmd {
        ConfigCommand::Init(args) => {
            let (path, profile) = target()?;
            init(&out, &path, &profile, args)
        }
        ConfigCommand::Set(args) => {
            let (path, profile) = target()?;
            set(&out, &path, &profile, &args.key, &args.value)
        }
        ConfigCommand::Path(_) => {
            let resolved = resolve(&source)?;
            if out.json {
                out.json_value(&serde_json::json!({
                    "profile": resolved.profile,
                    "config_file": resolved.path,
                    "config_file_found": resolved.file_found,
                }))?;
            } else {
                out.line(resolved.path.display())?;
            }
            Ok(exit::OK)
        }
        ConfigCommand::Show(_) => show(&out, &source),
    }
}

/// `config show`: the effective settings with their sources, then warnings for values `sync`
/// would refuse (exit 3).
fn show(out: &Output, source: &ConfigSource) -> anyhow::Result<u8> {
    let resolved = resolve(source)?;
    let data_dir = crate::config::data_dir(&resolved.profile)?;
    let sync = sync_entries(&resolved, &data_dir);
    if out.json {
        let row = |name: &str, value: Option<String>, source: String, secret: bool, required: bool| {
            (
                name.to_owned(),
                serde_json::json!({"value": value, "source": source, "secret": secret, "required": required}),
            )
        };
        let settings: serde_json::Map<String, serde_json::Value> = resolved
            .entries
            .iter()
            .map(|e| row(e.name, e.shown(), e.source.to_string(), e.secret, required(&resolved, e.name)))
            .collect();
        let sync: serde_json::Map<String, serde_json::Value> =
            sync.iter().map(|s| row(s.name, s.value.clone(), s.source.to_string(), false, false)).collect();
        out.json_value(&serde_json::json!({
            "profile": resolved.profile,
            "config_file": resolved.path,
            "config_file_found": resolved.file_found,
            "data_dir": data_dir,
            "settings": settings,
            "sync": sync,
        }))?;
    } else {
        let mut text = format!("profile:     {}\n", resolved.profile);
        let found = if resolved.file_found { "" } else { " (not found; using environment and defaults)" };
        text += &format!("config file: {}{found}\n", resolved.path.display());
        text += &format!("data dir:    {}\n\n", data_dir.display());
        let not_set = |required: bool| if required { "(not set; required)" } else { "(not set; optional)" };
        for e in &resolved.entries {
            let value = e.shown().unwrap_or_else(|| not_set(required(&resolved, e.name)).into());
            text += &format!("{:<26} {:<48} [{}]\n", e.name, value, e.source);
        }
        text += "\n[sync] (all optional; `sync` flags win over them)\n";
        for s in &sync {
            let value = s.value.clone().unwrap_or_else(|| not_set(false).into());
            text += &format!("{:<26} {:<48} [{}]\n", format!("sync.{}", s.name), value, s.source);
        }
        out.table(text.trim_end())?;
    }
    // Validation problems are worth a note, but `show` itself succeeded.
    let sync = crate::settings::SyncSettings::resolve(&crate::args::SyncArgs::default(), &resolved.sync);
    let problems: Vec<String> =
        [resolved.settings().err().map(|e| e.to_string()), sync.err().map(|e| e.0)].into_iter().flatten().collect();
    for problem in &problems {
        out.note(format_args!("warning: {problem}"));
    }
    if !problems.is_empty() {
        return Ok(exit::CONFIG);
    }
    Ok(exit::OK)
}

/// Whether a run of `sync` needs `name` to be set.
fn required(resolved: &Resolved, name: &str) -> bool {
    resolved.required_for(crate::settings::Needs::Api).contains(&name)
}

/// One `[sync]` setting as `config show` prints it.
#[derive(Debug)]
struct SyncEntry {
    name: &'static str,
    value: Option<String>,
    source: Source,
}

/// The `[sync]` table's settings: the file's value, else the default, else not set.
fn sync_entries(resolved: &Resolved, data_dir: &Path) -> Vec<SyncEntry> {
    let s = &resolved.sync;
    let entry = |name, file: Option<String>, default: Option<String>| {
        let (value, source) = crate::settings::layered(None, None, file, default);
        SyncEntry { name, value, source }
    };
    let num = |n: Option<u64>| n.map(|v| v.to_string());
    let db = s.db.as_deref().map(|db| {
        if crate::config::url_has_password(db) { "******** (a URL with a password)".to_owned() } else { db.to_owned() }
    });
    let entities = (!s.entities.is_empty()).then(|| s.entities.join(", "));
    vec![
        entry("entities", entities, Some(skysync_core::catalog::DEFAULT_ENTITIES.join(", "))),
        entry("db", db, Some(data_dir.join("skysync.db").display().to_string())),
        rate_limit_entry(s.rate_limit),
        entry("call_budget", num(s.call_budget), None),
        entry("concurrency", s.concurrency.map(|c| c.to_string()), Some(DEFAULT_CONCURRENCY.to_string())),
        entry(
            "partitions",
            s.partitions.map(|c| c.to_string()),
            Some(skysync_core::sync::partition::DEFAULT_PARTITIONS.to_string()),
        ),
        entry("lock_wait_secs", num(s.lock_wait_secs), Some(DEFAULT_LOCK_WAIT_SECS.to_string())),
        entry("deletes", s.deletes.clone(), Some("mark".into())),
        entry(
            "overlap_minutes",
            num(s.overlap_minutes),
            Some((skysync_core::sync::DEFAULT_OVERLAP.as_secs() / 60).to_string()),
        ),
        entry("reconcile_every_days", num(s.reconcile_every_days), None),
    ]
}

/// `rate_limit`: `SKYSYNC_RATE_LIMIT` over the file over the default (`off` spelled out).
fn rate_limit_entry(file: Option<RateLimit>) -> SyncEntry {
    let env = crate::config::process_env(RATE_LIMIT_ENV).map(|raw| {
        let shown = RateLimit::parse(&raw).map(|r| r.to_string()).unwrap_or(raw);
        (shown, RATE_LIMIT_ENV)
    });
    let (value, source) =
        crate::settings::layered(None, env, file.map(|r| r.to_string()), Some(DEFAULT_RATE_LIMIT.to_string()));
    SyncEntry { name: "rate_limit", value, source }
}

// ---------------------------------------------------------------------------------------------
// init

/// What `init` writes for one profile.
#[derive(Debug, Default)]
struct Answers {
    client_id: Option<String>,
    client_secret_file: Option<String>,
    subscription_key_file: Option<String>,
    redirect_uri: Option<String>,
    db: Option<String>,
    entities: Vec<String>,
}

fn init(out: &Output, path: &Path, profile: &str, args: InitArgs) -> anyhow::Result<u8> {
    let existing = read_existing(path, profile)?;
    let has_profile = existing.as_ref().is_some_and(|doc| profile_table(doc, profile).is_some());
    if has_profile && !args.force {
        return Err(UsageError(format!(
            "{} already has the profile `{profile}`; change one setting with `skysync config set KEY VALUE`, \
             or replace the profile with `skysync config init --force`",
            path.display()
        ))
        .into());
    }
    let interactive = !args.no_input && std::io::stdin().is_terminal() && args.client_id.is_none();
    let path_text = |p: Option<PathBuf>| p.map(|p| p.display().to_string());
    let mut answers = Answers {
        client_id: args.client_id,
        client_secret_file: path_text(args.client_secret_file),
        subscription_key_file: path_text(args.subscription_key_file),
        redirect_uri: args.redirect_uri,
        db: args.db,
        entities: args.entities,
    };
    if interactive {
        ask(&mut answers)?;
    }
    if let Some(db) = &answers.db
        && crate::config::url_has_password(db)
    {
        return Err(secret_refused("a db URL with a password", "db_password_file, ~/.pgpass or PGPASSWORD"));
    }
    for name in ["client_secret_file", "subscription_key_file"] {
        let value =
            if name == "client_secret_file" { &answers.client_secret_file } else { &answers.subscription_key_file };
        if let Some(file) = value
            && !Path::new(file).is_file()
        {
            out.note(format_args!("note: {name} {file} does not exist yet; put the value there (one line, chmod 600)"));
        }
    }
    let section = profile_text(profile, &answers);
    let text = match existing {
        None => format!("{HEADER}\n{section}"),
        Some(mut doc) => {
            if let Some(profiles) = doc.get_mut("profiles").and_then(|p| p.as_table_like_mut()) {
                profiles.remove(profile);
            }
            let mut text = doc.to_string();
            if !text.is_empty() && !text.ends_with("\n\n") {
                text.push_str(if text.ends_with('\n') { "\n" } else { "\n\n" });
            }
            text + &section
        }
    };
    write_config(path, profile, &text)?;
    if out.json {
        out.json_value(&serde_json::json!({"config_file": path, "profile": profile}))?;
    } else {
        out.line(format_args!("wrote profile `{profile}` to {} (mode 0600)", path.display()))?;
        out.note("next: `skysync config show` to check it, then `skysync login`");
    }
    Ok(exit::OK)
}

const HEADER: &str = "\
# skysync configuration, written by `skysync config init`. Change a value with
# `skysync config set KEY VALUE` (comments are kept) or in an editor; check it with
# `skysync config show`. Each setting may also come from the environment (SKYSYNC_CLIENT_ID, …),
# which wins over this file. Secrets are not kept in this file: each lives in a file of its own
# (one line, mode 0600) or a systemd credential (see the README, \"Where secrets come from\").
";

/// The profile's commented tables. Values are TOML-quoted; unset ones stay commented out.
fn profile_text(profile: &str, a: &Answers) -> String {
    let quoted = |v: &str| toml_edit::Value::from(v).to_string().trim().to_owned();
    let line = |key: &str, value: &Option<String>, example: &str| match value {
        Some(v) => format!("{key} = {}\n", quoted(v)),
        None => format!("# {key} = {}\n", quoted(example)),
    };
    let mut t = format!("[profiles.{profile}]\n");
    t += "# Required. The application's \"Application ID\": developer.blackbaud.com → My applications →\n";
    t += "# your application. (Or SKYSYNC_CLIENT_ID.)\n";
    t += &line("client_id", &a.client_id, "00000000-0000-0000-0000-000000000000");
    t += "# Required. A file (mode 0600) holding the \"Primary application secret\" of the same page.\n";
    t += "# (Or SKYSYNC_CLIENT_SECRET_FILE, or the systemd credential client_secret.)\n";
    t += &line("client_secret_file", &a.client_secret_file, "/etc/skysync/client_secret");
    t += "# Required for sync and api. A file (mode 0600) holding the subscription's \"Primary access\n";
    t += "# key\": developer.blackbaud.com/subscriptions. (Or SKYSYNC_SUBSCRIPTION_KEY_FILE, or the\n";
    t += "# systemd credential subscription_key.)\n";
    t += &line("subscription_key_file", &a.subscription_key_file, "/etc/skysync/subscription_key");
    t += "# Optional. The redirect URI registered with the application.\n";
    t += &line("redirect_uri", &a.redirect_uri, DEFAULT_REDIRECT_URI);
    t += "# Optional. Restrict consent to one Blackbaud environment.\n";
    t += &line("environment_id", &None, "p-0000000000000000000000");
    t += "# Optional. Encrypt the token store at rest (`skysync token-store new-key PATH`).\n";
    t += &line("token_key_file", &None, "/etc/skysync/token.key");
    t += &format!("\n[profiles.{profile}.sync]\n");
    t += "# Entities `skysync sync` syncs when none are named (`skysync sync --list` shows them all).\n";
    let entities = (!a.entities.is_empty()).then(|| a.entities.clone());
    let list = |e: &[String]| toml_edit::Value::from(toml_edit::Array::from_iter(e.iter().map(String::as_str)));
    match entities {
        Some(e) => t += &format!("entities = {}\n", list(&e).to_string().trim()),
        None => t += "# entities = [\"constituents\", \"gifts\"]\n",
    }
    t += "# Optional. A SQLite file or a postgres:// URL without a password (use db_password_file,\n";
    t += "# ~/.pgpass or PGPASSWORD). Default: SQLite under the profile's data directory.\n";
    t += &line("db", &a.db, "postgres://skysync@db.internal/sky?sslmode=verify-full");
    t += "# Optional. Calls per second (default 5), most calls per run, entities at once (default 4).\n";
    t += "# rate_limit = 5      # calls per second, or \"off\"\n# call_budget = 20000\n# concurrency = 4\n";
    t
}

/// Asks for each value not given as a flag, on stderr; an empty answer keeps the default.
fn ask(a: &mut Answers) -> anyhow::Result<()> {
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut prompt = |question: &str, current: &mut Option<String>| -> anyhow::Result<()> {
        if current.is_some() {
            return Ok(());
        }
        let mut err = std::io::stderr().lock();
        write!(err, "{question}: ")?;
        err.flush()?;
        let mut line = String::new();
        input.read_line(&mut line)?;
        let answer = line.trim();
        *current = (!answer.is_empty()).then(|| answer.to_owned());
        Ok(())
    };
    prompt("Application ID (developer.blackbaud.com → My applications)", &mut a.client_id)?;
    prompt("File holding the application secret (Enter to skip)", &mut a.client_secret_file)?;
    prompt("File holding the subscription key (Enter to skip)", &mut a.subscription_key_file)?;
    prompt("Database: SQLite path or postgres:// URL (Enter for the default SQLite file)", &mut a.db)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// set

fn set(out: &Output, path: &Path, profile: &str, key: &str, value: &str) -> anyhow::Result<u8> {
    let (table_path, leaf) = match key.split_once('.') {
        Some(("sync", leaf)) => (vec!["profiles", profile, "sync"], leaf),
        Some(_) => return Err(unknown_key(key)),
        None => (vec!["profiles", profile], key),
    };
    match key {
        "client_secret" => return Err(secret_refused("the client secret", "client_secret_file")),
        "subscription_key" => return Err(secret_refused("the subscription key", "subscription_key_file")),
        "sync.db" | "token_store" if crate::config::url_has_password(value) => {
            return Err(secret_refused("a URL with a password", "db_password_file, ~/.pgpass or PGPASSWORD"));
        }
        _ => {}
    }
    if leaf.is_empty() || !leaf.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
        return Err(unknown_key(key));
    }
    let base = read_existing(path, profile)?.unwrap_or_default();
    // The value's TOML type is whatever the config accepts for the key: a string, else a number,
    // a boolean, or a comma-separated list, in that order.
    let mut first_error = None;
    // A value that loads but that no `sync` could use (`rate_limit = 0`).
    let mut refused: Option<UsageError> = None;
    for candidate in candidates(value) {
        let mut doc = base.clone();
        let table = table_at(&mut doc, &table_path);
        match table.get_mut(leaf).and_then(toml_edit::Item::as_value_mut) {
            // Replace the value only: the key's comments and the one after the value stay.
            Some(existing) => {
                let decor = existing.decor().clone();
                *existing = candidate;
                *existing.decor_mut() = decor;
            }
            None => {
                table.insert(leaf, toml_edit::Item::Value(candidate));
            }
        }
        let text = doc.to_string();
        match crate::config::check_text(path, &text, profile).map(|()| check_sync_table(&text, profile)) {
            Ok(Err(e)) => {
                refused.get_or_insert(e);
            }
            Ok(Ok(())) => {
                write_config(path, profile, &text)?;
                if out.json {
                    out.json_value(&serde_json::json!({"config_file": path, "profile": profile, "key": key}))?;
                } else {
                    out.line(format_args!("set {key} in profile `{profile}` of {}", path.display()))?;
                }
                return Ok(exit::OK);
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = refused {
        return Err(UsageError(format!("cannot set {key} to {value}: {}", e.0)).into());
    }
    match first_error {
        Some(e) if e.to_string().contains("unknown field") => Err(unknown_key(key)),
        Some(e) => Err(UsageError(format!("cannot set {key} to that value: {e}")).into()),
        None => Err(unknown_key(key)),
    }
}

/// Whether `sync` could run with the profile's `[sync]` table in `text` (its flags aside).
fn check_sync_table(text: &str, profile: &str) -> Result<(), UsageError> {
    let table =
        toml::from_str::<toml::Table>(text).ok().and_then(|t| t.get("profiles")?.get(profile)?.get("sync").cloned());
    let Some(Ok(sync)) = table.map(toml::Value::try_into::<crate::config::SyncConfig>) else { return Ok(()) };
    crate::settings::SyncSettings::resolve_in(&crate::args::SyncArgs::default(), &sync, &|_| None).map(|_| ())
}

/// The keys `config set` knows, for "did you mean" (others that the config accepts work too).
const KNOWN_KEYS: &[&str] = &[
    "client_id",
    "client_secret_file",
    "subscription_key_file",
    "db_password_file",
    "token_key_file",
    "token_store",
    "notify_command",
    "redirect_uri",
    "auth_url",
    "token_url",
    "api_url",
    "client_auth",
    "environment_id",
    "access_skew_secs",
    "renewal_window_days",
    "warn_window_days",
    "sync.entities",
    "sync.db",
    "sync.rate_limit",
    "sync.call_budget",
    "sync.overlap_minutes",
    "sync.reconcile_every_days",
    "sync.deletes",
    "sync.concurrency",
    "sync.lock_wait_secs",
    "sync.partitions",
];

fn unknown_key(key: &str) -> anyhow::Error {
    let hint = match crate::suggest::nearest(key, KNOWN_KEYS.iter().copied()) {
        Some(near) => format!("did you mean `{near}`? "),
        None => String::new(),
    };
    UsageError(format!(
        "unknown setting `{key}`; {hint}`skysync config set --help` lists them, `skysync config show` shows them"
    ))
    .into()
}

fn secret_refused(what: &str, instead: &str) -> anyhow::Error {
    UsageError(format!(
        "skysync does not take {what} as an argument (it would show in `ps` and the shell history); \
         put it in a file (one line, chmod 600) and use {instead}, or the environment (see `skysync config init --help`)"
    ))
    .into()
}

/// The TOML values `value` may stand for, most likely first.
fn candidates(value: &str) -> Vec<toml_edit::Value> {
    let mut out = vec![toml_edit::Value::from(value)];
    if let Ok(n) = value.parse::<i64>() {
        out.push(n.into());
    }
    if let Ok(f) = value.parse::<f64>()
        && f.is_finite()
    {
        out.push(f.into());
    }
    if let Ok(b) = value.parse::<bool>() {
        out.push(b.into());
    }
    let items = value.split(',').map(str::trim).filter(|s| !s.is_empty());
    out.push(toml_edit::Array::from_iter(items).into());
    out
}

/// The table at `path` (`profiles.NAME[.sync]`), created as a standard table when absent.
fn table_at<'a>(doc: &'a mut toml_edit::DocumentMut, path: &[&str]) -> &'a mut toml_edit::Table {
    let mut table = doc.as_table_mut();
    for (i, key) in path.iter().enumerate() {
        let item = table.entry(key).or_insert_with(|| {
            let mut t = toml_edit::Table::new();
            // `profiles` itself is only a dotted prefix: no empty `[profiles]` header.
            t.set_implicit(i + 1 < path.len());
            toml_edit::Item::Table(t)
        });
        table = item.as_table_mut().expect("profiles tables are tables (the file was checked)");
    }
    table
}

// ---------------------------------------------------------------------------------------------
// the file

/// The config file as an editable document, `None` when it does not exist. Refused as every
/// command refuses it: unsafe to read (writable by others) or not loading.
fn read_existing(path: &Path, profile: &str) -> anyhow::Result<Option<toml_edit::DocumentMut>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(crate::config::ConfigError::File(format!("cannot read {}: {e}", path.display())).into()),
    };
    crate::config::load(path.to_path_buf(), true, profile)?;
    let doc = text
        .parse::<toml_edit::DocumentMut>()
        .map_err(|_| crate::config::ConfigError::File(format!("cannot parse {} as TOML", path.display())))?;
    Ok(Some(doc))
}

fn profile_table<'a>(doc: &'a toml_edit::DocumentMut, profile: &str) -> Option<&'a toml_edit::Item> {
    doc.get("profiles")?.get(profile)
}

/// Checks that `text` loads, then writes it atomically with mode 0600 (the directory 0700 when
/// created).
fn write_config(path: &Path, profile: &str, text: &str) -> anyhow::Result<()> {
    crate::config::check_text(path, text, profile)?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !dir.exists() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir)?;
    }
    let mut tmp = tempfile::Builder::new().prefix(".config.toml.").tempfile_in(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    tmp.write_all(text.as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_profile_loads_and_names_its_secrets_by_file() {
        let answers = Answers {
            client_id: Some("app \"1\"".into()),
            client_secret_file: Some("/etc/skysync/client_secret".into()),
            ..Answers::default()
        };
        let text = format!("{HEADER}\n{}", profile_text("acme", &answers));
        crate::config::check_text(Path::new("x.toml"), &text, "acme").unwrap();
        let parsed: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(parsed["profiles"]["acme"]["client_id"].as_str(), Some("app \"1\""), "quoted as TOML: {text}");
        assert!(text.contains("# subscription_key_file = "), "{text}");
        assert!(!text.contains("\nclient_secret ="), "{text}");
    }

    #[test]
    fn values_are_tried_as_string_then_number_then_list() {
        let kinds: Vec<String> = candidates("5").iter().map(|v| v.type_name().to_owned()).collect();
        assert_eq!(kinds, ["string", "integer", "float", "array"]);
        assert_eq!(candidates("a, b").last().unwrap().to_string().trim(), "[\"a\", \"b\"]");
    }
}
