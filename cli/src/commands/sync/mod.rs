//! `skysync sync`: settings, then the lock, the API client and the sink, then the engine
//! ([`crate::sync::engine`]), then the summary.

use anyhow::Context as _;
use skysync_core::catalog::{self, CATALOG, DEFAULT_ENTITIES, Entity};
use skysync_core::host::{Clock, SystemClock};

use crate::args::{SinkArgs, SyncArgs, SyncCommand};
use crate::context::{Context, Output};
use crate::exit::UsageError;
use crate::settings::SyncSettings;
use crate::sink::{self, JsonlOut, SinkSpec};
use crate::sync::progress::{Bars, LogLines, Progress};
use crate::sync::{EngineOptions, RunReport, engine, estimate, report};

mod dry_run;
mod list;
mod quota;
mod status;

pub use list::print_list;

/// `skysync sync …`; returns the exit code.
pub async fn run(ctx: &Context, args: SyncArgs) -> anyhow::Result<u8> {
    let out = ctx.output();
    if let Some(SyncCommand::Status(status_args)) = &args.command {
        let spec = sink_spec(ctx, &status_args.sink())?;
        return status::run(out, &spec, ctx.profile()).await;
    }
    if args.list {
        return print_list(out).map(|()| crate::exit::OK);
    }
    let cfg = &ctx.settings().sync;
    let entities = select_entities(&args.entities, &cfg.entities)?;
    let spec = sink_spec(ctx, &args.sink)?;
    let settings = SyncSettings::resolve(&args, cfg)?;
    let options = engine_options(&args, &settings)?;
    if settings.history && matches!(spec, SinkSpec::Jsonl(_)) {
        return Err(UsageError(
            "--history keeps replaced versions in database tables: use SQLite (--db FILE) or PostgreSQL, \
             not --format jsonl"
                .into(),
        )
        .into());
    }
    if matches!(spec, SinkSpec::Jsonl(_))
        && let Some(child) = entities.iter().find(|e| e.parent.is_some())
    {
        return Err(UsageError(format!(
            "{} is listed per parent record and needs the parents' rows: use SQLite (--db FILE) or PostgreSQL, \
             not --format jsonl",
            child.name
        ))
        .into());
    }
    let clock = SystemClock;
    if args.dry_run {
        let api = if args.estimate { Some(ctx.api_client(settings.rate_limit, settings.call_budget)?) } else { None };
        let dry = dry_run::DryRun { profile: ctx.profile(), daily_quota: settings.daily_quota, api: api.as_ref() };
        let base = &ctx.settings().endpoints.api;
        return dry_run::run(out, &spec, base, &entities, &options, &dry, &clock).await.map(|()| crate::exit::OK);
    }
    // Held until the run ends (dropped last): one sync per database at a time.
    let _lock = sink::run_lock::acquire(&spec, settings.lock_wait, clock.now()).await?;
    let mut sink = sink::open(&spec).await?;
    check_parents(sink.as_mut(), &entities).await?;
    let ledger = quota::load(sink.as_mut(), ctx.profile(), clock.now()).await?;
    let api = quota::limit(ctx.api_client(settings.rate_limit, settings.call_budget)?, settings.daily_quota, &ledger);
    // A quota-aware run estimates its calls first (the probes count against the quota too).
    let estimate = match settings.daily_quota {
        // Nothing left today: the run stops before its first call, so there is nothing to estimate.
        Some(q) if ledger.remaining(q) > 0 => {
            match estimate::estimate(&api, sink.as_mut(), &entities, &options, &clock).await {
                Ok(e) => Some(e),
                Err(e) => {
                    out.note(format_args!("warning: the run's calls could not be estimated: {e:#}"));
                    None
                }
            }
        }
        _ => None,
    };
    let progress: Box<dyn Progress> =
        if out.stderr_tty && !out.quiet { Box::new(Bars::new()) } else { Box::new(LogLines) };
    let mut report = engine::run(&api, sink.as_mut(), &entities, &options, &clock, progress.as_ref())
        .await
        .with_context(|| format!("sync into {}", spec.describe()))?;
    drop(progress);
    let total_calls = api.counters().calls;
    let daily = settings.daily_quota;
    let now = clock.now();
    if let Err(e) =
        quota::record(sink.as_mut(), ctx.profile(), ledger, daily, estimate.as_ref(), total_calls, &mut report, now)
            .await
    {
        out.note(format_args!("warning: the calls used today could not be saved: {e:#}"));
    }
    crate::metrics::record_sync(&spec, &report);
    if crate::output::stdout_closed() {
        // `--out - | head -1`: the reader has what it wanted; stopping is not a failure.
        return Ok(crate::exit::OK);
    }
    finish(out, &spec, &report)?;
    // Stopped by a signal: its status, as a shell reports a process the signal ended.
    Ok(report.signal.map_or(crate::exit::OK, |(number, _)| 128 + number as u8))
}

/// Refuses a per-parent list whose parent entity is neither in this run nor synced before.
async fn check_parents(sink: &mut dyn sink::Sink, entities: &[&'static Entity]) -> anyhow::Result<()> {
    for child in entities {
        let Some(parent) = child.parent else { continue };
        if entities.iter().any(|e| e.name == parent.entity) {
            continue;
        }
        if sink.state(parent.entity).await?.is_none_or(|s| s.last_run_at.is_none()) {
            return Err(UsageError(crate::sync::engine::parent_missing(child, parent.entity)).into());
        }
    }
    Ok(())
}

/// Prints the summary and turns an unfinished run into an error (exit 5 for Blackbaud's quota
/// and rate limits, via the API error in the chain). A planned stop (`--call-budget`,
/// `daily_quota`) is not an error: the summary says what was left and the exit code is 0.
fn finish(out: &Output, spec: &SinkSpec, report: &RunReport) -> anyhow::Result<()> {
    let summary_on_stderr = matches!(spec, SinkSpec::Jsonl(JsonlOut::Stdout));
    if out.json && !summary_on_stderr {
        out.json_value(&report::json(report))?;
    } else if summary_on_stderr {
        out.note(report::render(report, None));
    } else {
        out.line(report::render(report, out.width))?;
    }
    if let Some(stop) = &report.stopped
        && !stop.is_planned_stop()
    {
        let stop = anyhow::Error::new(stop.clone());
        if crate::exit::code_for(&stop) != crate::exit::THROTTLED {
            return Err(stop.context("the sync stopped early; every committed page is kept"));
        }
        // Quota and rate limits: the summary just said why and when to resume, so the error line
        // points there instead of repeating it (a cron mail shows Blackbaud's message once); the
        // stop still decides the exit code.
        let where_ = if out.json && !summary_on_stderr { "`stopped` in the JSON above" } else { "the summary above" };
        return Err(anyhow::Error::new(crate::exit::AlreadyShown(stop))
            .context(format!("the sync stopped early (why: {where_}); every committed page is kept")));
    }
    let failed: Vec<&str> =
        report.entities.iter().filter(|e| e.error.is_some() && !e.halted).map(|e| e.entity).collect();
    if !failed.is_empty() {
        let first = report.entities.iter().find_map(|e| e.error.as_deref()).unwrap_or_default();
        anyhow::bail!("sync failed for {} ({first})", failed.join(", "));
    }
    Ok(())
}

/// The entities to sync: the command line's, else the config's, else the defaults.
pub fn select_entities(cli: &[String], config: &[String]) -> Result<Vec<&'static Entity>, UsageError> {
    let names: Vec<&str> = if !cli.is_empty() {
        cli.iter().map(String::as_str).collect()
    } else if !config.is_empty() {
        config.iter().map(String::as_str).collect()
    } else {
        DEFAULT_ENTITIES.to_vec()
    };
    let mut out: Vec<&'static Entity> = Vec::new();
    for name in names {
        let found: Vec<&'static Entity> = if name.eq_ignore_ascii_case("all") {
            CATALOG.iter().collect()
        } else {
            vec![catalog::find(name).ok_or_else(|| {
                let near = crate::suggest::nearest(name, CATALOG.iter().map(|e| e.name))
                    .map(|n| format!("did you mean `{n}`? "))
                    .unwrap_or_default();
                UsageError(format!("unknown entity {name:?}; {near}`skysync sync --list` shows the catalog"))
            })?]
        };
        for e in found {
            if !out.iter().any(|o| o.name == e.name) {
                out.push(e);
            }
        }
    }
    Ok(out)
}

/// Where rows go: `--db`/`--format`/`--out`, else the config's `db`, else the profile's SQLite
/// file; a PostgreSQL sink gets the profile's password file.
fn sink_spec(ctx: &Context, a: &SinkArgs) -> anyhow::Result<SinkSpec> {
    let cfg = &ctx.settings().sync;
    let jsonl = a.format.as_deref().is_some_and(|f| f.eq_ignore_ascii_case("jsonl"));
    let db = a.db.as_deref().or(if jsonl { None } else { cfg.db.as_deref() });
    let default = ctx.data_dir().join("skysync.db");
    let spec =
        SinkSpec::parse(db, a.format.as_deref(), a.out.as_deref(), default).map_err(|e| UsageError(e.to_string()))?;
    Ok(spec.with_password_file(ctx.settings().db_password_file.clone()))
}

fn engine_options(args: &SyncArgs, s: &SyncSettings) -> Result<EngineOptions, UsageError> {
    if args.page_size == Some(0) {
        return Err(UsageError("--page-size must be at least 1".into()));
    }
    Ok(EngineOptions {
        page_size: args.page_size,
        overlap: s.overlap,
        full: args.full,
        reconcile: args.reconcile,
        reconcile_every: s.reconcile_every,
        deletes: s.deletes,
        concurrency: s.concurrency,
        partitions: s.partitions,
        rate_limit: s.rate_limit,
        history: s.history,
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::args::{Cli, Command};

    fn sync_args(argv: &[&str]) -> SyncArgs {
        let mut full = vec!["skysync", "sync"];
        full.extend_from_slice(argv);
        match Cli::try_parse_from(full).unwrap().command {
            Command::Sync(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn status_is_a_subcommand_and_entities_are_positional() {
        let a = sync_args(&["status", "--db", "x.db"]);
        assert!(matches!(a.command, Some(SyncCommand::Status(ref s)) if s.db.as_deref() == Some("x.db")));
        let a = sync_args(&["gifts", "--daily-quota", "900", "--dry-run", "--estimate"]);
        assert!(a.dry_run && a.estimate && a.daily_quota == Some(900));
        let a = sync_args(&["gifts", "constituents", "--full", "--page-size", "50", "--call-budget", "9"]);
        assert!(a.command.is_none());
        assert_eq!(a.entities, ["gifts", "constituents"]);
        assert!(a.full && !a.reconcile);
        assert_eq!((a.page_size, a.call_budget), (Some(50), Some(9)));
        let a = sync_args(&["--list"]);
        assert!(a.list && a.entities.is_empty());
    }

    #[test]
    fn entities_come_from_the_command_line_then_config_then_defaults() {
        let names = |v: Vec<&Entity>| v.iter().map(|e| e.name).collect::<Vec<_>>();
        assert_eq!(names(select_entities(&[], &[]).unwrap()), ["constituents", "gifts"]);
        assert_eq!(names(select_entities(&[], &["funds".into()]).unwrap()), ["funds"]);
        assert_eq!(
            names(select_entities(&["Email-Addresses".into(), "gifts".into()], &["funds".into()]).unwrap()),
            ["email_addresses", "gifts"]
        );
        assert_eq!(select_entities(&["all".into(), "gifts".into()], &[]).unwrap().len(), CATALOG.len());
        let err = select_entities(&["giftz".into()], &[]).unwrap_err();
        assert!(err.to_string().contains("--list"));
    }
}
