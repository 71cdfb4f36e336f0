//! `--metrics-file PATH`: OpenMetrics text for node_exporter's textfile collector (name the file
//! `*.prom` in the collector's directory), rewritten after every command.
//!
//! | metric (all gauges, label `profile`) | what |
//! |---|---|
//! | `skysync_refresh_token_days_left` | whole days until the refresh token expires |
//! | `skysync_last_exit_code` (also `command`) | the command's exit code |
//! | `skysync_last_run_timestamp_seconds` | when the command finished (Unix time) |
//! | `skysync_entity_last_success_age_seconds` (also `entity`) | seconds since the entity's last successful sync |
//! | `skysync_entity_rows` (also `entity`) | live rows after the last run |
//! | `skysync_run_records` (also `entity`) | records received by this sync run |
//! | `skysync_run_api_calls` (also `entity`) | SKY API calls made by this sync run |
//! | `skysync_run_quota_calls_used` | this run's SKY API calls, all of which count against the subscription's daily quota |
//! | `skysync_run_quota_exhausted` | 1 when the run stopped on the daily quota |
//! | `skysync_run_token_calls` | token endpoint calls during the run |
//! | `skysync_quota_calls_today` | SKY API calls counted in the current quota day, earlier runs' included (when the database keeps the count) |
//! | `skysync_quota_remaining_today` | calls left today under `daily_quota` (only with a `daily_quota`) |
//!
//! The sync metrics appear after a `sync` (the entity ages from the sink's `sync_state`, so they
//! cover entities this run did not touch). The file is written atomically (temporary file in the
//! same directory, fsync, rename), mode 0644 so the collector can read it: it holds no secret.
//! Failing to write it is a warning, never a change of exit code.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::sync::Mutex;

use skysync_core::api::ApiError;
use skysync_core::host::{Clock, SystemClock};
use skysync_core::store::TokenStore;
use time::OffsetDateTime;

use crate::context::Context;
use crate::sink::{EntityState, SinkSpec};
use crate::sync::engine::RunReport;

/// What the sync of this process reported (see [`record_sync`]).
struct SyncRun {
    spec: SinkSpec,
    entities: Vec<(String, u64, u64)>,
    calls: u64,
    token_calls: u64,
    quota_exhausted: bool,
    /// `(calls counted today, calls left under daily_quota)` from the database's quota ledger.
    quota_day: Option<(u64, Option<u64>)>,
}

static LAST_SYNC: Mutex<Option<SyncRun>> = Mutex::new(None);

/// Keeps a finished sync's counts for the metrics file (the sync command calls this).
pub fn record_sync(spec: &SinkSpec, report: &RunReport) {
    let run = SyncRun {
        spec: spec.clone(),
        entities: report.entities.iter().map(|e| (e.entity.to_owned(), e.records, e.requests)).collect(),
        calls: report.api.calls,
        token_calls: report.token_calls,
        quota_exhausted: matches!(report.stopped, Some(ApiError::QuotaExhausted { .. })),
        quota_day: report.quota.as_ref().map(|q| (q.calls_today, q.remaining_today)),
    };
    *LAST_SYNC.lock().unwrap_or_else(|e| e.into_inner()) = Some(run);
}

/// One metric family being written.
struct Family<'a> {
    out: &'a mut String,
}

impl Family<'_> {
    fn new<'a>(out: &'a mut String, name: &str, help: &str) -> Family<'a> {
        let _ = writeln!(out, "# TYPE {name} gauge\n# HELP {name} {help}");
        Family { out }
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
        let _ = writeln!(self.out, "{name}{{{}}} {value}", labels.join(","));
    }
}

/// OpenMetrics label value escaping.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The metrics text for `profile` after `command` exited with `code`.
async fn render(ctx: Option<&Context>, profile: &str, command: &str, code: u8) -> String {
    let now = SystemClock.now();
    let p = [("profile", profile)];
    let mut out = String::new();
    if let Some(ctx) = ctx
        && let Ok(Some(stored)) = ctx.store().load().await
    {
        let days = stored.tokens.refresh_time_left(now).as_secs() / 86_400;
        let name = "skysync_refresh_token_days_left";
        Family::new(&mut out, name, "Whole days until the refresh token expires.").sample(name, &p, days);
    }
    let name = "skysync_last_exit_code";
    Family::new(&mut out, name, "Exit code of the last skysync command.").sample(
        name,
        &[("profile", profile), ("command", command)],
        code,
    );
    let name = "skysync_last_run_timestamp_seconds";
    Family::new(&mut out, name, "When the last skysync command finished.").sample(name, &p, now.unix_timestamp());
    let run = LAST_SYNC.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(run) = run {
        sync_metrics(&mut out, profile, &run, now).await;
    }
    out.push_str("# EOF\n");
    out
}

async fn sync_metrics(out: &mut String, profile: &str, run: &SyncRun, now: OffsetDateTime) {
    // JSON lines on stdout have no state to read back.
    let readable = !matches!(run.spec, SinkSpec::Jsonl(crate::sink::JsonlOut::Stdout));
    let states = match crate::sink::open(&run.spec).await {
        _ if !readable => Vec::new(),
        Ok(mut sink) => sink.states().await.unwrap_or_default(),
        Err(e) => {
            tracing::warn!("metrics: cannot read the sync state: {e}");
            Vec::new()
        }
    };
    let per_state = |name: &str, help: &str, out: &mut String, value: &dyn Fn(&EntityState) -> Option<i64>| {
        let mut f = Family::new(out, name, help);
        for s in &states {
            if let Some(v) = value(s) {
                f.sample(name, &[("profile", profile), ("entity", &s.entity)], v);
            }
        }
    };
    per_state(
        "skysync_entity_last_success_age_seconds",
        "Seconds since the entity's last successful sync.",
        out,
        &|s| s.last_success_at.map(|t| (now - t).whole_seconds().max(0)),
    );
    per_state("skysync_entity_rows", "Live rows after the entity's last run.", out, &|s| {
        i64::try_from(s.row_count).ok()
    });
    let mut f = Family::new(out, "skysync_run_records", "Records received by the last sync run.");
    for (entity, records, _) in &run.entities {
        f.sample("skysync_run_records", &[("profile", profile), ("entity", entity)], records);
    }
    let mut f = Family::new(out, "skysync_run_api_calls", "SKY API calls made by the last sync run.");
    for (entity, _, calls) in &run.entities {
        f.sample("skysync_run_api_calls", &[("profile", profile), ("entity", entity)], calls);
    }
    let p = [("profile", profile)];
    for (name, help, value) in [
        (
            "skysync_run_quota_calls_used",
            "SKY API calls of the last sync run (each counts against the daily quota).",
            run.calls,
        ),
        (
            "skysync_run_quota_exhausted",
            "1 when the last sync run stopped on the daily quota.",
            u64::from(run.quota_exhausted),
        ),
        ("skysync_run_token_calls", "Token endpoint calls during the last sync run.", run.token_calls),
    ] {
        Family::new(out, name, help).sample(name, &p, value);
    }
    if let Some((calls_today, remaining)) = run.quota_day {
        let name = "skysync_quota_calls_today";
        let help = "SKY API calls counted in the current quota day, earlier runs' included.";
        Family::new(out, name, help).sample(name, &p, calls_today);
        if let Some(remaining) = remaining {
            let name = "skysync_quota_remaining_today";
            Family::new(out, name, "Calls left today under daily_quota.").sample(name, &p, remaining);
        }
    }
}

/// Writes the metrics file for the finished command (a warning when it cannot).
pub async fn write(path: &Path, ctx: Option<&Context>, profile: &str, command: &str, code: u8) {
    let text = render(ctx, profile, command, code).await;
    if let Err(e) = write_atomically(path, text.as_bytes()) {
        tracing::warn!("could not write the metrics file {}: {e}", path.display());
    }
}

/// Temp file beside `path` (0644), fsync, rename over `path`.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new().prefix(".skysync-metrics.").suffix(".tmp").tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
