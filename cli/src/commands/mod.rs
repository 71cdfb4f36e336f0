//! One module per command; [`run`] sets up logging and the runtime and dispatches.

pub mod api;
pub mod completions;
pub mod config;
pub mod consent_page;
pub mod demo;
pub mod export;
pub mod import;
pub mod login;
pub mod logout;
pub mod man;
pub mod renew;
pub mod status;
pub mod sync;
pub mod token;
pub mod token_store;
pub mod views;

use tracing_subscriber::EnvFilter;

use crate::args::{Cli, Command, GlobalArgs, LogFormat};
use crate::config::ConfigSource;
use crate::context::{Context, Output};
use crate::settings::{Needs, resolve};

/// Runs a parsed command line and returns the exit code (errors are the caller's to report).
pub fn run(mut cli: Cli) -> anyhow::Result<u8> {
    init_logging(&cli.global);
    for warning in cli.settle()? {
        tracing::warn!("{warning}");
    }
    crate::output::set_globals(cli.global.quiet, cli.global.wide);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(dispatch(cli))
}

async fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    let g = cli.global;
    // Commands that may hold the token store's lock finish a token save before a signal stops them.
    if !matches!(
        cli.command,
        Command::Config(_)
            | Command::Sim(_)
            | Command::Demo(_)
            | Command::ConsentPage(_)
            | Command::Completions(_)
            | Command::Man(_)
    ) {
        crate::runtime::defer_termination_signals();
    }
    let name = command_name(&cli.command);
    let pinger = crate::ping::Pinger::new(g.ping_url.clone());
    pinger.start().await;
    let fleet = crate::fleet::wanted(&g);
    let result = match name {
        "sync" | "status" if fleet => crate::fleet::run(&g, name).await,
        _ if fleet => Err(crate::exit::UsageError(format!(
            "--all-profiles and more than one --profile work with `sync` and `status`, not `{name}`"
        ))
        .into()),
        _ => run_command(&g, cli.command).await,
    };
    let (code, error) = match &result {
        Ok(code) => (*code, None),
        Err(e) if crate::exit::is_broken_pipe(e) => (crate::exit::OK, None),
        Err(e) => (crate::exit::code_for(e), Some(format!("{e:#}"))),
    };
    pinger.finish(code, error.clone()).await;
    // A fleet's children notify and write metrics for their own profiles.
    if fleet {
        return result;
    }
    if matches!(name, "sync" | "token" | "renew" | "status" | "api")
        && let Ok(ctx) = context(&g)
    {
        crate::notify::after(&ctx, name, code, error).await;
    }
    if let Some(path) = &g.metrics_file {
        let ctx = context(&g).ok();
        let profile = match &ctx {
            Some(ctx) => ctx.profile().to_owned(),
            None => crate::config::profile_name(g.profile()).unwrap_or_else(|_| "default".into()),
        };
        crate::metrics::write(path, ctx.as_ref(), &profile, name, code).await;
    }
    result
}

/// The subcommand's name, for pings and notifications.
fn command_name(command: &Command) -> &'static str {
    command.word()
}

async fn run_command(g: &GlobalArgs, command: Command) -> anyhow::Result<u8> {
    let g = g.clone();
    match command {
        Command::Config(cmd) => config::run(&g, cmd),
        Command::Completions(args) => completions::run(&args),
        Command::Man(args) => man::run(&args),
        Command::Sim(args) => crate::sim::args::run(args).await.map(|()| crate::exit::OK),
        Command::Logout(args) => logout::run(&g, args).await,
        Command::Login(args) => login::run(&context_needing(&g, Some(Needs::Tokens))?, args).await,
        Command::Import(args) => import::run(&context(&g)?, args).await,
        Command::Export(args) => export::run(&context(&g)?, args).await,
        Command::Token(args) => token::run(&context_needing(&g, Some(Needs::Tokens))?, args).await,
        Command::Status(_) => status::run(&context(&g)?).await,
        Command::Renew(_) => renew::run(&context_needing(&g, Some(Needs::Tokens))?).await,
        Command::Api(args) => api::run(&context_needing(&g, Some(Needs::Api))?, args).await,
        // The catalog needs no profile: it works before anything is configured.
        Command::Sync(args) if args.list && args.command.is_none() => {
            sync::print_list(&Output::detect(g.json)).map(|()| crate::exit::OK)
        }
        Command::Sync(args) => {
            // A mistyped entity is reported before anything else (it needs no settings).
            sync::select_entities(&args.entities, &[])?;
            // A real run calls the API; `sync status` and `--dry-run` read only the database.
            let needs = (args.command.is_none() && !args.dry_run).then_some(Needs::Api);
            sync::run(&context_needing(&g, needs)?, args).await
        }
        Command::Demo(args) => demo::run(args).await.map(|()| crate::exit::OK),
        Command::ConsentPage(args) => consent_page::run(args).await.map(|()| crate::exit::OK),
        Command::TokenStore(cmd) => token_store::run(&g, cmd).await,
        Command::Views(args) => views::run(&args),
    }
}

/// Where the config lives according to the global options.
pub fn config_source(g: &GlobalArgs) -> ConfigSource {
    ConfigSource { path: g.config.clone(), profile: g.profile().map(str::to_owned) }
}

/// The context for commands that need the profile's settings.
pub fn context(g: &GlobalArgs) -> anyhow::Result<Context> {
    context_needing(g, None)
}

/// [`context`], after checking that every setting `needs` requires is set (all missing ones are
/// reported together).
pub fn context_needing(g: &GlobalArgs, needs: Option<crate::settings::Needs>) -> anyhow::Result<Context> {
    let resolved = resolve(&config_source(g))?;
    if let Some(needs) = needs {
        resolved.require(needs)?;
    }
    let settings = resolved.settings()?;
    let data_dir = crate::config::data_dir(&resolved.profile)?;
    Ok(Context::new(resolved.profile.clone(), settings, data_dir, Output::detect(g.json)))
}

fn init_logging(g: &GlobalArgs) {
    let default = match (g.quiet, g.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "warn,skysync_cli=info,skysync_core=info",
        (false, 2) => "info,skysync_cli=debug,skysync_core=debug",
        // Third-party crates stay at info even here: transports may log more than we vet.
        (false, _) => "info,skysync_cli=trace,skysync_core=trace",
    };
    let filter = std::env::var("SKYSYNC_LOG")
        .ok()
        .filter(|v| !v.is_empty())
        .and_then(|v| EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    // Text lines start with the time in RFC 3339, UTC, to the millisecond ([`UtcMillis`]), so a
    // cron log can be read against the database's timestamps.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(g.verbose > 1)
        .with_timer(UtcMillis);
    let _ = match g.log_format {
        LogFormat::Text => builder.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Log timestamps: RFC 3339 in UTC with milliseconds (`2027-01-15T02:30:00.123Z`).
#[derive(Debug, Clone, Copy)]
struct UtcMillis;

impl tracing_subscriber::fmt::time::FormatTime for UtcMillis {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        use skysync_core::host::Clock;
        w.write_str(&utc_millis(skysync_core::host::SystemClock.now()))
    }
}

/// `at` as RFC 3339 UTC with exactly three decimals.
fn utc_millis(at: time::OffsetDateTime) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    at.to_offset(time::UtcOffset::UTC).format(FORMAT).unwrap_or_else(|_| at.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn log_times_are_rfc3339_utc_to_the_millisecond() {
        let at = time::macros::datetime!(2027-01-15 03:30:00.123456 +01:00);
        assert_eq!(super::utc_millis(at), "2027-01-15T02:30:00.123Z");
    }
}
