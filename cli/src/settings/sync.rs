//! `sync`'s flags over the profile's `[sync]` table, by the same rule as every setting.

use std::time::Duration;

use skysync_core::sync::partition::{DEFAULT_PARTITIONS, MAX_PARTITIONS};

use super::{
    DEFAULT_CONCURRENCY, DEFAULT_LOCK_WAIT_SECS, DEFAULT_RATE_LIMIT, RATE_LIMIT_ENV, RateLimit, Source, layered,
};
use crate::args::SyncArgs;
use crate::config::{Env, SyncConfig, process_env};
use crate::exit::UsageError;
use crate::sink::DeleteMode;

/// What a sync run does, from its flags over the profile's `[sync]` table over the defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncSettings {
    /// Client-side pace in calls per second (0 = unpaced: `--rate-limit off`).
    pub rate_limit: f64,
    /// Most API calls the run may make.
    pub call_budget: Option<u64>,
    /// Most API calls per quota day, over every run (`daily_quota`, `--daily-quota`,
    /// `SKYSYNC_DAILY_QUOTA`).
    pub daily_quota: Option<u64>,
    /// How long to wait for another run's lock.
    pub lock_wait: Duration,
    /// Entities synced at once (at least 1).
    pub concurrency: usize,
    /// What reconciliation does with deleted rows.
    pub deletes: DeleteMode,
    /// Overlap for list latency.
    pub overlap: Duration,
    /// Between automatic delete reconciliations.
    pub reconcile_every: Option<Duration>,
    /// Most chains an initial or full scan is split into (1 = one chain).
    pub partitions: usize,
    /// Keep replaced versions in `<entity>_history`.
    pub history: bool,
}

/// The environment variable that turns change history on (`1`/`true`/`yes`) or off (`0`/`false`/`no`).
pub const HISTORY_ENV: &str = "SKYSYNC_HISTORY";

impl SyncSettings {
    /// `args` over `file` over the defaults. A value no run can use is a usage error (exit 2)
    /// naming the flag or the config key it came from.
    pub fn resolve(args: &SyncArgs, file: &SyncConfig) -> Result<SyncSettings, UsageError> {
        Self::resolve_in(args, file, &process_env)
    }

    /// [`resolve`](Self::resolve) with `env` as the environment.
    pub fn resolve_in(args: &SyncArgs, file: &SyncConfig, env: Env<'_>) -> Result<SyncSettings, UsageError> {
        let history_env = match env(HISTORY_ENV).map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None => None,
            Some("1" | "true" | "yes" | "on") => Some((true, HISTORY_ENV)),
            Some("0" | "false" | "no" | "off") => Some((false, HISTORY_ENV)),
            Some(other) => {
                return Err(UsageError(format!("{HISTORY_ENV} must be 1/true/yes or 0/false/no, not {other:?}")));
            }
        };
        let (history, _) = layered(args.history.then_some((true, "--history")), history_env, file.history, Some(false));
        let rate = rate_limit(args, file, env)?;
        let (concurrency, concurrency_from) =
            layered(flag(args.concurrency, "--concurrency"), None, file.concurrency, Some(DEFAULT_CONCURRENCY));
        let concurrency = concurrency.unwrap_or(DEFAULT_CONCURRENCY);
        if concurrency == 0 {
            return Err(invalid("concurrency", &concurrency_from, "must be at least 1"));
        }
        let (deletes, deletes_from) =
            layered(flag(args.deletes.clone(), "--deletes"), None, file.deletes.clone(), None);
        let deletes = match deletes.map(|d| d.to_ascii_lowercase()).as_deref() {
            None | Some("mark") => DeleteMode::Mark,
            Some("remove") => DeleteMode::Remove,
            Some(other) => {
                return Err(invalid("deletes", &deletes_from, &format!("must be `mark` or `remove`, not {other:?}")));
            }
        };
        let (partitions, partitions_from) =
            layered(flag(args.partitions, "--partitions"), None, file.partitions, Some(DEFAULT_PARTITIONS));
        let partitions = partitions.unwrap_or(DEFAULT_PARTITIONS);
        if !(1..=MAX_PARTITIONS).contains(&partitions) {
            return Err(invalid(
                "partitions",
                &partitions_from,
                &format!("must be between 1 and {MAX_PARTITIONS}, not {partitions}"),
            ));
        }
        let (call_budget, _) = layered(flag(args.call_budget, "--call-budget"), None, file.call_budget, None);
        let daily_quota = daily_quota(args, file, env)?;
        let (wait, _) =
            layered(flag(args.lock_wait, "--lock-wait"), None, file.lock_wait_secs, Some(DEFAULT_LOCK_WAIT_SECS));
        Ok(SyncSettings {
            rate_limit: rate,
            call_budget,
            daily_quota,
            lock_wait: Duration::from_secs(wait.unwrap_or(DEFAULT_LOCK_WAIT_SECS)),
            concurrency,
            deletes,
            overlap: file.overlap_minutes.map_or(skysync_core::sync::DEFAULT_OVERLAP, |m| Duration::from_secs(m * 60)),
            reconcile_every: file.reconcile_every_days.map(|d| Duration::from_secs(d * 86_400)),
            partitions,
            history: history.unwrap_or(false),
        })
    }
}

/// `--rate-limit` over `SKYSYNC_RATE_LIMIT` over `rate_limit` over the default, as calls per
/// second (0 for `off`). Zero is refused, with the spelling of `off` where it came from.
fn rate_limit(args: &SyncArgs, file: &SyncConfig, env: Env<'_>) -> Result<f64, UsageError> {
    let from_env = match env(RATE_LIMIT_ENV) {
        Some(raw) => {
            Some((RateLimit::parse(&raw).map_err(|e| UsageError(format!("{RATE_LIMIT_ENV}: {e}")))?, RATE_LIMIT_ENV))
        }
        None => None,
    };
    let (rate, from) = layered(
        flag(args.rate_limit, "--rate-limit"),
        from_env,
        file.rate_limit,
        Some(RateLimit::PerSecond(DEFAULT_RATE_LIMIT)),
    );
    let rate = rate.unwrap_or(RateLimit::PerSecond(DEFAULT_RATE_LIMIT));
    rate.checked().map(RateLimit::calls_per_second).map_err(|problem| {
        let off = match &from {
            Source::Flag(flag) => format!("`{flag} off` turns the client-side pace off"),
            Source::Env(var) => format!("`{var}=off` turns the client-side pace off"),
            _ => "to turn the client-side pace off, write `rate_limit = \"off\"` instead".to_owned(),
        };
        let mut e = invalid("rate_limit", &from, &problem);
        e.0 = format!("{}; {off}", e.0);
        e
    })
}

/// `--daily-quota` over `SKYSYNC_DAILY_QUOTA` over `daily_quota`: at least 1 when set.
fn daily_quota(args: &SyncArgs, file: &SyncConfig, env: Env<'_>) -> Result<Option<u64>, UsageError> {
    const VAR: &str = "SKYSYNC_DAILY_QUOTA";
    let from_env = match env(VAR) {
        Some(raw) => Some((
            raw.trim().parse::<u64>().map_err(|_| {
                UsageError(format!("{VAR} must be a whole number of API calls per day, not {:?}", raw.trim()))
            })?,
            VAR,
        )),
        None => None,
    };
    let (quota, from) = layered(flag(args.daily_quota, "--daily-quota"), from_env, file.daily_quota, None);
    match quota {
        Some(0) => Err(invalid("daily_quota", &from, "must be at least 1 (leave it unset for no limit)")),
        q => Ok(q),
    }
}

/// A flag's value with its name, for [`layered`].
fn flag<T>(value: Option<T>, name: &'static str) -> Option<(T, &'static str)> {
    value.map(|v| (v, name))
}

/// A usage error naming the flag, or the `[sync]` key of the config file, a bad value came from.
fn invalid(key: &str, from: &Source, problem: &str) -> UsageError {
    match from {
        Source::Flag(flag) | Source::Env(flag) => UsageError(format!("{flag} {problem}")),
        _ => UsageError(format!("`{key}` in the profile's [sync] table of the config file {problem}")),
    }
}
