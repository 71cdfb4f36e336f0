//! One module per command; [`run`] sets up logging and the runtime and dispatches.

pub mod api;
pub mod config;
pub mod consent_page;
pub mod demo;
pub mod export;
pub mod import;
pub mod login;
pub mod logout;
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
use crate::settings::resolve;

/// Runs a parsed command line and returns the exit code (errors are the caller's to report).
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    init_logging(&cli.global);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(dispatch(cli))
}

async fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    let g = cli.global;
    // Commands that may hold the token store's lock finish a token save before a signal stops them.
    if !matches!(cli.command, Command::Config(_) | Command::Sim(_) | Command::Demo(_) | Command::ConsentPage(_)) {
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
    match command {
        Command::Login(_) => "login",
        Command::Import(_) => "import",
        Command::Export(_) => "export",
        Command::Token(_) => "token",
        Command::Status(_) => "status",
        Command::Renew => "renew",
        Command::Api(_) => "api",
        Command::Logout(_) => "logout",
        Command::Config(_) => "config",
        Command::Sim(_) => "sim",
        Command::Sync(_) => "sync",
        Command::Demo(_) => "demo",
        Command::ConsentPage(_) => "consent-page",
        Command::TokenStore(_) => "token-store",
        Command::Views(_) => "views",
    }
}

async fn run_command(g: &GlobalArgs, command: Command) -> anyhow::Result<u8> {
    let g = g.clone();
    match command {
        Command::Config(cmd) => config::run(&g, cmd),
        Command::Sim(args) => crate::sim::args::run(args).await.map(|()| crate::exit::OK),
        Command::Logout(args) => logout::run(&g, args).await,
        Command::Login(args) => login::run(&context(&g)?, args).await,
        Command::Import(args) => import::run(&context(&g)?, args).await,
        Command::Export(args) => export::run(&context(&g)?, args).await,
        Command::Token(args) => token::run(&context(&g)?, args).await,
        Command::Status(_) => status::run(&context(&g)?).await,
        Command::Renew => renew::run(&context(&g)?).await,
        Command::Api(args) => api::run(&context(&g)?, args).await,
        // The catalog needs no profile: it works before anything is configured.
        Command::Sync(args) if args.list && args.command.is_none() => {
            sync::print_list(&Output::detect(g.json)).map(|()| crate::exit::OK)
        }
        Command::Sync(args) => sync::run(&context(&g)?, args).await,
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
    let resolved = resolve(&config_source(g))?;
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
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(g.verbose > 1);
    let _ = match g.log_format {
        LogFormat::Text => {
            builder.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).without_time().try_init()
        }
        LogFormat::Json => builder.json().try_init(),
    };
}
