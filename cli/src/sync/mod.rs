//! The nightly sync: SKY API list endpoints into a database, incrementally and resumably.
//!
//! [`engine`] does the work: per entity it pages through a SKY list and commits each page's rows
//! together with the bookmark that covers them, so a run killed at any point resumes from the last
//! committed page with nothing lost and nothing duplicated. Entities run concurrently through one
//! shared API client (one rate limiter) and one sink.

mod demo;
pub mod engine;
mod list;
mod plan;
pub mod progress;
pub mod report;
mod status;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use serde::Deserialize;
use skysync_core::catalog::{self, CATALOG, DEFAULT_ENTITIES, Entity};
use skysync_core::host::SystemClock;
use skysync_core::sync::DEFAULT_OVERLAP;
use skysync_core::sync::partition::{DEFAULT_PARTITIONS, MAX_PARTITIONS};

pub use demo::demo;
pub use list::print_list;

use crate::context::{Context, Output};
use crate::exit::UsageError;
use crate::sink::{self, DeleteMode, JsonlOut, SinkSpec};
use progress::{Bars, LogLines, Progress};

pub use engine::{EngineOptions, EntityReport, RunMode, RunReport};

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
    /// Client-side pace in calls per second.
    #[serde(default)]
    pub rate_limit: Option<f64>,
    /// Most API calls one run may make.
    #[serde(default)]
    pub call_budget: Option<u64>,
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
}

/// Client-side pace when neither the command line nor the config sets one. Blackbaud has
/// documented both 5 and 10 calls per second; 5 is safe under either, and a nightly sync is bound
/// by the daily quota, not by the pace.
pub const DEFAULT_RATE_LIMIT: f64 = skysync_core::api::DEFAULT_PACE;
/// Entities synced at once by default.
pub const DEFAULT_CONCURRENCY: usize = 4;
/// Seconds a run waits for another run on the same database by default: long enough to ride out
/// the end of a run, short enough that a cron job does not pile up behind a long one.
pub const DEFAULT_LOCK_WAIT_SECS: u64 = 10;

/// `skysync sync` arguments.
#[derive(Debug, Clone, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SyncArgs {
    /// `sync status`.
    #[command(subcommand)]
    pub command: Option<SyncCommand>,
    /// Entities to sync (default: the config's list, else constituents and gifts; `all` for the
    /// whole catalog; see --list).
    #[arg(value_name = "ENTITY")]
    pub entities: Vec<String>,
    /// Where rows go.
    #[command(flatten)]
    pub sink: SinkArgs,
    /// Re-sync from scratch; the old rows stay visible until the new set is complete.
    #[arg(long)]
    pub full: bool,
    /// Also reconcile deletes (an id scan; rows gone from SKY are marked or removed).
    #[arg(long)]
    pub reconcile: bool,
    /// What reconciliation does with deleted rows: mark (set deleted_at) or remove.
    #[arg(long, value_name = "MODE")]
    pub deletes: Option<String>,
    /// Show what would be fetched, without calling the API.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the entity catalog and exit.
    #[arg(long)]
    pub list: bool,
    /// Client-side pace in API calls per second (default 5).
    #[arg(long, value_name = "N")]
    pub rate_limit: Option<f64>,
    /// Stop cleanly after this many API calls (keeps a run within a share of the daily quota).
    #[arg(long, value_name = "N")]
    pub call_budget: Option<u64>,
    /// Entities synced at the same time (default 4).
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// Most chains an initial or --full scan of one entity is split into, run side by side
    /// (default 8; 1 = one chain). The number used also follows the rate limit and page latency.
    #[arg(long, value_name = "N")]
    pub partitions: Option<usize>,
    /// Seconds to wait while another sync holds this database's lock, then exit 6 (default 10).
    #[arg(long, value_name = "SECS")]
    pub lock_wait: Option<u64>,
    /// Records per request (default: the endpoint's maximum). For tests.
    #[arg(long, value_name = "N", hide = true)]
    pub page_size: Option<u32>,
}

/// `skysync sync` subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum SyncCommand {
    /// Show each entity's bookmark, last success, row count and last error (no API calls).
    Status(SinkArgs),
}

/// The destination options shared by `sync` and `sync status`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SinkArgs {
    /// SQLite file or postgres:// URL (default: the config's `db`, else
    /// $XDG_DATA_HOME/skysync/PROFILE/skysync.db). PostgreSQL TLS as in libpq:
    /// `?sslmode=disable|prefer|require|verify-ca|verify-full` (default prefer: TLS if offered),
    /// `&sslrootcert=/path/ca.pem` (else the system's roots); use verify-full for remote servers.
    #[arg(long, value_name = "PATH|URL")]
    pub db: Option<String>,
    /// `db` (default) or `jsonl`.
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// With --format jsonl: a directory (one ENTITY.jsonl each) or `-` for stdout.
    #[arg(long, value_name = "DIR|-")]
    pub out: Option<String>,
}

/// `skysync demo` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Constituents the simulator generates (gifts are twice as many).
    #[arg(long, value_name = "N", default_value_t = 2000)]
    pub records: u64,
    /// SQLite file to sync into (default: a fresh file in a temporary directory).
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Keep the temporary directory (database and demo tokens) after the demo.
    #[arg(long)]
    pub keep: bool,
}

/// `skysync sync …`.
pub async fn run(ctx: &Context, args: SyncArgs) -> anyhow::Result<()> {
    let out = ctx.output();
    if let Some(SyncCommand::Status(sink_args)) = &args.command {
        let spec = sink_spec(ctx, sink_args)?;
        return status::run(out, &spec).await;
    }
    if args.list {
        return print_list(out);
    }
    let cfg = &ctx.settings().sync;
    let entities = select_entities(&args.entities, &cfg.entities)?;
    let spec = sink_spec(ctx, &args.sink)?;
    let mut options = engine_options(&args, cfg)?;
    if args.dry_run {
        return plan::run(out, &spec, &ctx.settings().endpoints.api, &entities, &options).await;
    }
    let rate = args.rate_limit.or(cfg.rate_limit).unwrap_or(DEFAULT_RATE_LIMIT);
    if !(rate.is_finite() && rate >= 0.0) {
        return Err(UsageError(format!("--rate-limit must be a number of calls per second, not {rate}")).into());
    }
    options.rate_limit = rate;
    let budget = args.call_budget.or(cfg.call_budget);
    let wait = Duration::from_secs(args.lock_wait.or(cfg.lock_wait_secs).unwrap_or(DEFAULT_LOCK_WAIT_SECS));
    // Held until the run ends (dropped last): one sync per database at a time.
    let _lock = sink::run_lock::acquire(&spec, wait).await?;
    let api = ctx.api_client(rate, budget)?;
    let mut sink = sink::open(&spec).await?;
    let progress: Box<dyn Progress> = if out.stderr_tty { Box::new(Bars::new()) } else { Box::new(LogLines) };
    let report = engine::run(&api, sink.as_mut(), &entities, &options, &SystemClock, progress.as_ref())
        .await
        .with_context(|| format!("sync into {}", spec.describe()))?;
    drop(progress);
    finish(out, &spec, &report)
}

/// Prints the summary and turns an unfinished run into an error (exit 5 for quota, budget and
/// rate limits, via the API error in the chain).
fn finish(out: &Output, spec: &SinkSpec, report: &RunReport) -> anyhow::Result<()> {
    let summary_on_stderr = matches!(spec, SinkSpec::Jsonl(JsonlOut::Stdout));
    if out.json && !summary_on_stderr {
        out.json_value(&report::json(report))?;
    } else if summary_on_stderr {
        out.note(report::render(report));
    } else {
        out.line(report::render(report))?;
    }
    if let Some(stop) = &report.stopped {
        return Err(anyhow::Error::new(stop.clone()).context("the sync stopped early; every committed page is kept"));
    }
    let failed: Vec<&str> = report.entities.iter().filter(|e| e.error.is_some()).map(|e| e.entity).collect();
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
                UsageError(format!("unknown entity {name:?}; `skysync sync --list` shows the catalog"))
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

fn sink_spec(ctx: &Context, a: &SinkArgs) -> anyhow::Result<SinkSpec> {
    let cfg = &ctx.settings().sync;
    let db = a.db.as_deref().or(if a.format.as_deref().is_some_and(|f| f.eq_ignore_ascii_case("jsonl")) {
        None
    } else {
        cfg.db.as_deref()
    });
    let default = ctx.data_dir().join("skysync.db");
    SinkSpec::parse(db, a.format.as_deref(), a.out.as_deref(), default).map_err(|e| UsageError(e.to_string()).into())
}

fn engine_options(args: &SyncArgs, cfg: &SyncConfig) -> Result<EngineOptions, UsageError> {
    let deletes = match args.deletes.as_deref().or(cfg.deletes.as_deref()).map(str::to_ascii_lowercase).as_deref() {
        None | Some("mark") => DeleteMode::Mark,
        Some("remove") => DeleteMode::Remove,
        Some(other) => return Err(UsageError(format!("deletes must be `mark` or `remove`, not {other:?}"))),
    };
    if args.page_size == Some(0) || args.concurrency == Some(0) {
        return Err(UsageError("--page-size and --concurrency must be at least 1".into()));
    }
    let partitions = args.partitions.or(cfg.partitions).unwrap_or(DEFAULT_PARTITIONS);
    if !(1..=MAX_PARTITIONS).contains(&partitions) {
        return Err(UsageError(format!("partitions must be between 1 and {MAX_PARTITIONS}, not {partitions}")));
    }
    Ok(EngineOptions {
        page_size: args.page_size,
        overlap: cfg.overlap_minutes.map_or(DEFAULT_OVERLAP, |m| Duration::from_secs(m * 60)),
        full: args.full,
        reconcile: args.reconcile,
        reconcile_every: cfg.reconcile_every_days.map(|d| Duration::from_secs(d * 86_400)),
        deletes,
        concurrency: args.concurrency.or(cfg.concurrency).unwrap_or(DEFAULT_CONCURRENCY),
        partitions,
        rate_limit: 0.0,
    })
}
