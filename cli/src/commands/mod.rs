//! One module per command; [`run`] sets up logging and the runtime and dispatches.

pub mod api;
pub mod config;
pub mod export;
pub mod import;
pub mod login;
pub mod logout;
pub mod renew;
pub mod status;
pub mod token;
pub mod token_store;

use tracing_subscriber::EnvFilter;

use crate::args::{Cli, Command, GlobalArgs, LogFormat};
use crate::config::{ConfigSource, resolve};
use crate::context::{Context, Output};

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
    match cli.command {
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
            crate::sync::print_list(&Output::detect(g.json)).map(|()| crate::exit::OK)
        }
        Command::Sync(args) => crate::sync::run(&context(&g)?, args).await.map(|()| crate::exit::OK),
        Command::Demo(args) => crate::sync::demo(args).await.map(|()| crate::exit::OK),
        Command::ConsentPage(args) => crate::consent_page::run(args).await.map(|()| crate::exit::OK),
        Command::TokenStore(cmd) => token_store::run(&g, cmd).await,
    }
}

/// Where the config lives according to the global options.
pub fn config_source(g: &GlobalArgs) -> ConfigSource {
    ConfigSource { path: g.config.clone(), profile: g.profile.clone() }
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
