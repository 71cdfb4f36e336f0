//! The command line (clap derive). Secrets are never arguments: they would show in `ps`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Keeps Blackbaud SKY API access alive without a person: consent once, then refresh forever.
#[derive(Debug, Parser)]
#[command(name = "skysync", version, about, after_help = format!("{BEFORE_THE_COMMAND}\n\n{}", crate::exit::HELP_TEXT))]
pub struct Cli {
    /// Global options.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// `skysync --help`'s word on the options of many commands that are not global.
const BEFORE_THE_COMMAND: &str = "\
--json, --config and --profile belong to the commands that read them (`skysync COMMAND --help`).
They may also come before the command, as in `skysync --profile acme login`.";

/// Options every command takes, and the options that may also come before the command.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// More logging on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr: no warnings, no progress bars.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    // `--json`, `--config` and `--profile` belong to the commands that read them ([`JsonArgs`],
    // [`ProfileArgs`]). Before the command (`skysync --profile acme login`) they are a permanent,
    // documented form, hidden from the help and taken without a warning by the commands that read
    // them, refused before any other ([`Cli::settle`]). [`Cli::settle`] gathers them here from
    // either place, with the options below.
    /// `--json` (see [`JsonArgs`]).
    #[arg(long, hide = true)]
    pub json: bool,
    /// `--config` (see [`ProfileArgs`]); `SKYSYNC_CONFIG` is read where the file is located.
    #[arg(long, value_name = "PATH", hide = true)]
    pub config: Option<PathBuf>,
    /// `--profile` (see [`ProfileArgs`]); `SKYSYNC_PROFILE` is read where the profile is named.
    #[arg(long = "profile", value_name = "NAME", hide = true, action = clap::ArgAction::Append)]
    pub profiles: Vec<String>,
    // The options below belong to the commands they apply to (`skysync sync --ping-url URL`).
    // Before the command they are still read, hidden and with a warning ([`Cli::settle`]), for
    // command lines written before 0.2.
    /// `--wide` (status, sync, config show).
    #[arg(long, hide = true)]
    pub wide: bool,
    /// `--all-profiles` (sync, status).
    #[arg(long, hide = true, conflicts_with = "profiles")]
    pub all_profiles: bool,
    /// `--ping-url` (the routine commands: [`HOOK_COMMANDS`]).
    #[arg(long, value_name = "URL", hide = true)]
    pub ping_url: Option<url::Url>,
    /// `--metrics-file` (the routine commands: [`HOOK_COMMANDS`]).
    #[arg(long, value_name = "PATH", hide = true)]
    pub metrics_file: Option<PathBuf>,
}

/// The commands that take `--json`: those that print a result a script may read.
pub const JSON_COMMANDS: &str =
    "login, import, export, token, status, renew, api, logout, config, sync and token-store";

/// The commands that take `--config` and `--profile`: those that read a profile's settings or tokens.
pub const PROFILE_COMMANDS: &str =
    "login, import, export, token, status, renew, api, logout, config, sync, token-store rekey and token-store migrate";

/// `--json`, on the commands that print a result a script may read.
#[derive(Debug, Clone, Default, Args)]
pub struct JsonArgs {
    /// Machine-readable JSON on stdout (errors too: {"error": {"code", "kind", "message"}}).
    #[arg(long)]
    pub json: bool,
}

/// `--config` and `--profile`, on the commands that read a profile's settings or tokens.
/// The environment variables are read where the file is located and the profile named
/// ([`crate::config`]), not by clap: a flag before the command then wins over them as one after it.
#[derive(Debug, Clone, Default, Args)]
pub struct ProfileArgs {
    /// Config file [env: SKYSYNC_CONFIG] (default: $XDG_CONFIG_HOME/skysync/config.toml).
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Profile in the config file, one per Blackbaud environment [env: SKYSYNC_PROFILE] (default:
    /// `default`). `sync` and `status` take it more than once to work on several profiles.
    #[arg(long = "profile", value_name = "NAME", action = clap::ArgAction::Append)]
    pub profiles: Vec<String>,
}

/// The commands that take `--ping-url` and `--metrics-file`: what runs from cron or a timer.
pub const HOOK_COMMANDS: &str = "sync, sync status, status, token, renew and api";

/// `--ping-url` and `--metrics-file`, on the commands a cron job or timer runs.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Monitoring")]
pub struct HookArgs {
    /// Ping this URL when the command starts (URL/start), succeeds (URL) or fails (URL/fail), as
    /// healthchecks.io expects.
    #[arg(long, env = "SKYSYNC_PING_URL", value_name = "URL", hide_env_values = true)]
    pub ping_url: Option<url::Url>,
    /// Write OpenMetrics for node_exporter's textfile collector to this file after the command
    /// (token days left, last exit code, per-entity sync age, records and calls per run).
    #[arg(long, env = "SKYSYNC_METRICS_FILE", value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
}

/// `--all-profiles`, on `sync` and `status`.
#[derive(Debug, Clone, Default, Args)]
pub struct FleetArgs {
    /// Every profile of the config file, in parallel (at most SKYSYNC_PARALLEL_PROFILES at once,
    /// default 4); the exit code is the worst.
    #[arg(long, conflicts_with = "profiles")]
    pub all_profiles: bool,
}

/// `--wide`, on the commands that print tables.
#[derive(Debug, Clone, Default, Args)]
pub struct WideArgs {
    /// Print tables at full width instead of fitting them to the terminal's width.
    #[arg(long)]
    pub wide: bool,
}

/// What the routine commands (`sync`, `sync status`, `status`) share: `--all-profiles`, `--wide`
/// and the monitoring hooks.
#[derive(Debug, Clone, Default, Args)]
pub struct RoutineArgs {
    /// `--all-profiles`.
    #[command(flatten)]
    pub fleet: FleetArgs,
    /// `--wide`.
    #[command(flatten)]
    pub wide: WideArgs,
    /// `--ping-url`, `--metrics-file`.
    #[command(flatten)]
    pub hooks: HookArgs,
}

impl Cli {
    /// Gathers the command's own `--json`, `--config`, `--profile`, `--wide`, `--all-profiles`,
    /// `--ping-url` and `--metrics-file` into [`Cli::global`], where the rest of the program reads
    /// them. Before the command, `--json`, `--config` and `--profile` are taken as they are, and
    /// the others (where 0.1 took them) with a warning (returned) each; before a command that does
    /// not take them, they are a usage error.
    pub fn settle(&mut self) -> Result<Vec<String>, crate::exit::UsageError> {
        use crate::exit::UsageError;
        let name = self.command.name();
        let takes = self.command.takes();
        let g = &mut self.global;
        let refuse = |given: bool, flag: &str, taken: bool, takers: &str| {
            if given && !taken {
                return Err(UsageError(format!("{flag} applies to {takers}, not `{name}`")));
            }
            Ok(())
        };
        refuse(g.json, "--json", takes.json.is_some(), JSON_COMMANDS)?;
        refuse(g.config.is_some(), "--config", takes.profile.is_some(), PROFILE_COMMANDS)?;
        refuse(!g.profiles.is_empty(), "--profile", takes.profile.is_some(), PROFILE_COMMANDS)?;
        refuse(g.wide, "--wide", takes.wide.is_some(), "status, sync and config show")?;
        refuse(g.all_profiles, "--all-profiles", takes.fleet.is_some(), "sync and status")?;
        refuse(g.ping_url.is_some(), "--ping-url", takes.hooks.is_some(), HOOK_COMMANDS)?;
        refuse(g.metrics_file.is_some(), "--metrics-file", takes.hooks.is_some(), HOOK_COMMANDS)?;
        let mut warnings = Vec::new();
        let mut deprecated = |given: bool, flag: &str| {
            if given {
                warnings.push(format!(
                    "`skysync {flag} … {name}` is deprecated: put {flag} after the command (`skysync {name} {flag} …`)"
                ));
            }
        };
        deprecated(g.wide, "--wide");
        deprecated(g.all_profiles, "--all-profiles");
        deprecated(g.ping_url.is_some(), "--ping-url");
        deprecated(g.metrics_file.is_some(), "--metrics-file");
        g.json |= takes.json.is_some_and(|j| j.json);
        if let Some(p) = takes.profile {
            if g.config.is_some() && p.config.is_some() {
                return Err(UsageError(format!("--config is given twice, before and after `{name}`: give it once")));
            }
            g.config = g.config.take().or_else(|| p.config.clone());
            g.profiles.extend(p.profiles.iter().cloned());
        }
        g.wide |= takes.wide.is_some_and(|w| w.wide);
        g.all_profiles |= takes.fleet.is_some_and(|f| f.all_profiles);
        // clap sees the two together only on one side of the command.
        if g.all_profiles && !g.profiles.is_empty() {
            return Err(UsageError("--all-profiles and --profile exclude each other: give one of them".into()));
        }
        if let Some(h) = takes.hooks {
            g.ping_url = g.ping_url.take().or_else(|| h.ping_url.clone());
            g.metrics_file = g.metrics_file.take().or_else(|| h.metrics_file.clone());
        }
        Ok(warnings)
    }

    /// Whether `--json` was given, before the command or after it (before [`Cli::settle`] too).
    pub fn wants_json(&self) -> bool {
        self.global.json || self.command.takes().json.is_some_and(|j| j.json)
    }
}

/// The options a command takes of those that may also come before it ([`Cli::settle`]).
#[derive(Debug, Default)]
struct Takes<'a> {
    json: Option<&'a JsonArgs>,
    profile: Option<&'a ProfileArgs>,
    fleet: Option<&'a FleetArgs>,
    wide: Option<&'a WideArgs>,
    hooks: Option<&'a HookArgs>,
}

impl<'a> Takes<'a> {
    /// `--json`, `--config` and `--profile`.
    fn profile(json: &'a JsonArgs, profile: &'a ProfileArgs) -> Self {
        Self { json: Some(json), profile: Some(profile), ..Self::default() }
    }

    /// And `--all-profiles`, `--wide` and the monitoring hooks.
    fn routine(self, r: &'a RoutineArgs) -> Self {
        Self { fleet: Some(&r.fleet), wide: Some(&r.wide), hooks: Some(&r.hooks), ..self }
    }
}

impl Command {
    /// The command's words (`sync status`, `config show`), for messages.
    pub fn name(&self) -> String {
        let sub = match self {
            Command::Sync(SyncArgs { command: Some(SyncCommand::Status(_)), .. }) => " status",
            Command::Config(ConfigCommand::Show(_)) => " show",
            Command::Config(ConfigCommand::Path(_)) => " path",
            Command::Config(ConfigCommand::Init(_)) => " init",
            Command::Config(ConfigCommand::Set(_)) => " set",
            Command::TokenStore(TokenStoreCommand::NewKey(_)) => " new-key",
            Command::TokenStore(TokenStoreCommand::Rekey(_)) => " rekey",
            Command::TokenStore(TokenStoreCommand::Migrate(_)) => " migrate",
            _ => "",
        };
        format!("{}{sub}", self.word())
    }

    /// The subcommand's word after `skysync`.
    pub fn word(&self) -> &'static str {
        match self {
            Command::Login(_) => "login",
            Command::Import(_) => "import",
            Command::Export(_) => "export",
            Command::Token(_) => "token",
            Command::Status(_) => "status",
            Command::Renew(_) => "renew",
            Command::Api(_) => "api",
            Command::Logout(_) => "logout",
            Command::Config(_) => "config",
            Command::Sim(_) => "sim",
            Command::Sync(_) => "sync",
            Command::Views(_) => "views",
            Command::Demo(_) => "demo",
            Command::ConsentPage(_) => "consent-page",
            Command::TokenStore(_) => "token-store",
            Command::Completions(_) => "completions",
            Command::Man(_) => "man",
        }
    }

    /// What the command takes of the options that may also come before it.
    fn takes(&self) -> Takes<'_> {
        match self {
            Command::Login(a) => Takes::profile(&a.json, &a.profile),
            Command::Import(a) => Takes::profile(&a.json, &a.profile),
            Command::Export(a) => Takes::profile(&a.json, &a.profile),
            Command::Token(a) => Takes { hooks: Some(&a.hooks), ..Takes::profile(&a.json, &a.profile) },
            Command::Status(a) => Takes::profile(&a.json, &a.profile).routine(&a.routine),
            Command::Renew(a) => Takes { hooks: Some(&a.hooks), ..Takes::profile(&a.json, &a.profile) },
            Command::Api(a) => Takes { hooks: Some(&a.hooks), ..Takes::profile(&a.json, &a.profile) },
            Command::Logout(a) => Takes::profile(&a.json, &a.profile),
            Command::Config(ConfigCommand::Show(a)) => {
                Takes { wide: Some(&a.wide), ..Takes::profile(&a.json, &a.profile) }
            }
            Command::Config(ConfigCommand::Path(a)) => Takes::profile(&a.json, &a.profile),
            Command::Config(ConfigCommand::Init(a)) => Takes::profile(&a.json, &a.profile),
            Command::Config(ConfigCommand::Set(a)) => Takes::profile(&a.json, &a.profile),
            Command::Sync(SyncArgs { command: Some(SyncCommand::Status(a)), .. }) => {
                Takes::profile(&a.json, &a.profile).routine(&a.routine)
            }
            Command::Sync(a) => Takes::profile(&a.json, &a.profile).routine(&a.routine),
            Command::TokenStore(TokenStoreCommand::NewKey(a)) => Takes { json: Some(&a.json), ..Takes::default() },
            Command::TokenStore(TokenStoreCommand::Rekey(a)) => Takes::profile(&a.json, &a.profile),
            Command::TokenStore(TokenStoreCommand::Migrate(a)) => Takes::profile(&a.json, &a.profile),
            Command::Sim(_)
            | Command::Views(_)
            | Command::Demo(_)
            | Command::ConsentPage(_)
            | Command::Completions(_)
            | Command::Man(_) => Takes::default(),
        }
    }
}

impl GlobalArgs {
    /// The profile named on the command line (the last `--profile`), if any.
    pub fn profile(&self) -> Option<&str> {
        self.profiles.last().map(String::as_str)
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The commands.
// `sync`'s arguments are the largest by far; the one value per process makes that moot.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Consent in a browser once and store the tokens.
    Login(LoginArgs),
    /// Store a token bundle exported by the consent page.
    Import(ImportArgs),
    /// Hand this profile's tokens over as a bundle (for another host or app).
    Export(ExportArgs),
    /// Print a valid access token (refreshing it if due).
    #[command(after_help = "\
Examples:
  curl -H \"$(skysync token --header)\" -H \"Bb-Api-Subscription-Key: $KEY\" \"$SKY_URL\"
  skysync --json token                   # {\"access_token\", \"token_type\", \"expires_at\"}")]
    Token(TokenArgs),
    /// Show who consented and when the tokens expire (works offline).
    #[command(after_help = "\
Exit code 0 when healthy, 10 when the refresh token expires within warn_window_days, 4 when a
person must consent again.

Examples:
  skysync status
  skysync status --all-profiles          # one line per profile; the exit code is the worst
  skysync status || echo \"skysync status: $?\" | mail -s \"skysync needs attention\" ops@example.org")]
    Status(StatusArgs),
    /// Rotate the refresh token now.
    #[command(after_help = "\
Routine runs rotate by themselves within renewal_window_days of expiry; this does it now.

Examples:
  skysync renew
  skysync --profile acme --json renew")]
    Renew(RenewArgs),
    /// Make an authenticated SKY API call and print the JSON.
    #[command(after_help = "\
Examples:
  skysync api '/constituent/v1/constituents?limit=5'
  skysync api /constituent/v1/constituents --paginate > constituents.jsonl
  skysync api -X PATCH /constituent/v1/constituents/280 --data '{\"first\": \"Robert\"}'
  skysync api -X POST /gift/v1/gifts --data @gift.json")]
    Api(ApiArgs),
    /// Remove this profile's tokens.
    #[command(after_help = "\
Examples:
  skysync logout
  skysync --profile acme logout --yes    # no question (scripts, no terminal)")]
    Logout(LogoutArgs),
    /// Write, edit and inspect the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Run the SKY API simulator.
    #[command(after_help = "\
Examples:
  skysync sim --port 8330 --records 5000
  skysync sim --fail-rate-500 0.05 --rate-limit 5   # 500 on 5% of calls; 429 over 5/s")]
    Sim(crate::sim::args::SimArgs),
    /// Sync SKY API data into a database.
    Sync(SyncArgs),
    /// Print the SQL of the reporting views (v_*), or their column reference.
    #[command(after_help = "\
Examples:
  skysync views gifts > views.sql
  skysync views --db postgres constituents gifts
  skysync views --markdown")]
    Views(crate::commands::views::ViewsArgs),
    /// A self-contained demo against the simulator.
    #[command(after_help = "\
Examples:
  skysync demo
  skysync demo --records 20000 --db demo.db --keep")]
    Demo(DemoArgs),
    /// Serve the browser consent page on loopback (for admins who consent on their own machine).
    #[command(after_help = "\
Examples:
  skysync consent-page                   # then open http://localhost:8321/callback
  skysync consent-page --port 8400 --dir web/dist")]
    ConsentPage(ConsentPageArgs),
    /// Encryption of the token store at rest: make a key, re-encrypt under a new key.
    #[command(subcommand)]
    TokenStore(TokenStoreCommand),
    /// Print a shell completion script.
    #[command(after_help = "\
Examples:
  skysync completions bash > ~/.local/share/bash-completion/completions/skysync
  skysync completions zsh > \"${fpath[1]}/_skysync\"
  skysync completions fish > ~/.config/fish/completions/skysync.fish")]
    Completions(CompletionsArgs),
    /// Print the manual page (roff), or write a page per command.
    #[command(after_help = "\
Examples:
  skysync man | man -l -
  skysync man --dir /usr/local/share/man/man1")]
    Man(crate::commands::man::ManArgs),
}

/// `skysync login`.
#[derive(Debug, Clone, Args)]
#[command(after_help = "\
The new tokens replace the profile's stored tokens (the previous file is kept as tokens.json.bak
until the next save). Use a profile per Blackbaud environment: `skysync --profile NAME login`.
The redirect_uri (default http://localhost:8321/callback) must be registered with the application;
`login` listens on its loopback port. On a machine without a browser, use --manual.

Examples:
  skysync login
  skysync --profile acme login --no-browser    # print the URL; open it anywhere
  skysync login --manual                       # paste the redirected URL (no listener)")]
pub struct LoginArgs {
    /// Do not try to open a browser; only print the URL.
    #[arg(long)]
    pub no_browser: bool,
    /// Start no listener: paste the redirected URL (or the bare code) on stdin.
    #[arg(long)]
    pub manual: bool,
    /// Seconds to wait for the consent.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub timeout: u64,
    /// `--json`.
    #[command(flatten)]
    pub json: JsonArgs,
    /// `--config`, `--profile`.
    #[command(flatten)]
    pub profile: ProfileArgs,
}

/// `skysync import`.
#[derive(Debug, Clone, Args)]
#[command(after_help = "\
The stored tokens are replaced (the last three token files are kept as tokens.json.bak,
tokens.json.bak.2 and tokens.json.bak.3). Without --force, import refuses tokens that still work
for another Blackbaud environment (import a second environment into its own profile:
`skysync --profile NAME import`), a refresh token that has expired or is older than the stored
one, and an authorization code obtained before the stored consent. A code that was already sent
is always refused: codes work once, and a server may revoke the whole consent on a replay.

Examples:
  skysync import bundle.json
  skysync import --prepare                     # print a consent-page link for an encrypted bundle
  skysync --profile acme import - < bundle.json")]
pub struct ImportArgs {
    /// The bundle file, or `-` for stdin.
    #[arg(value_name = "FILE|-", default_value = "-")]
    pub file: String,
    /// Replace stored tokens that still work for another environment, or that are newer.
    #[arg(long)]
    pub force: bool,
    /// Do not import: make a one-time key pair in the profile and print a consent-page link that
    /// makes the page encrypt the bundle to it (and binds the bundle to this step).
    #[arg(long, conflicts_with_all = ["force"])]
    pub prepare: bool,
    /// With --prepare: the consent page's address (default: the profile's redirect_uri, which is
    /// where `skysync consent-page` serves it).
    #[arg(long, value_name = "URL", requires = "prepare")]
    pub page_url: Option<url::Url>,
    /// `--json`.
    #[command(flatten)]
    pub json: JsonArgs,
    /// `--config`, `--profile`.
    #[command(flatten)]
    pub profile: ProfileArgs,
}

/// `skysync export`.
#[derive(Debug, Clone, Args)]
#[command(after_help = "\
The bundle is what `skysync import` (on another host or profile) and the JavaScript bindings read.
It holds the refresh token in plain text: move it once, import it, delete it.
A grant must have one refresher (each refresh may rotate the refresh token and leave the other
holder with a dead one), so this profile hands its tokens over: `token`, `sync` and `api` then exit
4 naming where they went, until a bundle is imported here again. --copy keeps using them here too.

Examples:
  skysync export bundle.json                   # then, on the other host: skysync import bundle.json
  skysync export --copy - | node app.mjs")]
pub struct ExportArgs {
    /// Where to write the bundle (a new file, mode 0600), or `-` for stdout.
    #[arg(value_name = "FILE|-")]
    pub file: String,
    /// Copy instead of handing over: this profile keeps refreshing the tokens too (only safe when
    /// the other holder never refreshes them).
    #[arg(long)]
    pub copy: bool,
    /// `--json`.
    #[command(flatten)]
    pub json: JsonArgs,
    /// `--config`, `--profile`.
    #[command(flatten)]
    pub profile: ProfileArgs,
}

/// `skysync token`.
#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    /// Print `Authorization: Bearer …` instead of the bare token.
    #[arg(long)]
    pub header: bool,
    /// `--json`.
    #[command(flatten)]
    pub json: JsonArgs,
    /// `--config`, `--profile`.
    #[command(flatten)]
    pub profile: ProfileArgs,
    /// `--ping-url`, `--metrics-file`.
    #[command(flatten)]
    pub hooks: HookArgs,
}

/// `skysync status`.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// `--json`.
    #[command(flatten)]
    pub json: JsonArgs,
    /// `--config`, `--profile`.
    #[command(flatten)]
    pub profile: ProfileArgs,
    // After the options above: the monitoring heading would carry over to them.
    /// `--all-profiles`, `--wide`, `--ping-url`, `--metrics-file`.
    #[command(flatten)]
    pub routine: RoutineArgs,
}

/// `skysync renew`.
#[derive(Debug, Clone, Args)]
pub struct RenewArgs {
    /// `--json`.
    #[command(flatten)]
    pub json: JsonArgs,
    /// `--config`, `--profile`.
    #[command(flatten)]
    pub profile: ProfileArgs,
    /// `--ping-url`, `--metrics-file`.
    #[command(flatten)]
    pub hooks: HookArgs,
}

/// `skysync config show`.
#[derive(Debug, Clone, Args)]
pub struct ConfigShowArgs {
    /// `--wide`.
    #[command(flatten)]
    pub wide: WideArgs,
    /// `--json`.
    #[command(flatten)]
    pub json: JsonArgs,
    /// `--config`, `--profile`.
    #[command(flatten)]
    pub profile: ProfileArgs,
}

/// `skysync api`.
#[derive(Debug, Clone, Args)]
pub struct ApiArgs {
    /// Path under the API base (`/constituent/v1/constituents?limit=5`) or a full `next_link`.
    pub path: String,
    /// HTTP method.
    #[arg(short = 'X', long, default_value = "GET", value_parser = ["GET", "POST", "PUT", "PATCH", "DELETE", "get", "post", "put", "patch", "delete"])]
    pub method: String,
    /// JSON request body, or `@FILE` (`@-` for stdin).
    #[arg(long, value_name = "JSON|@FILE")]
    pub data: Option<String>,
    /// Follow `next_link` and print one JSON record per line.
    #[arg(long)]
    pub paginate: bool,
    /// `--json`.
    #[command(flatten)]
    pub json: JsonArgs,
    /// `--config`, `--profile`.
    #[command(flatten)]
    pub profile: ProfileArgs,
    /// `--ping-url`, `--metrics-file`.
    #[command(flatten)]
    pub hooks: HookArgs,
}

/// `skysync logout`.
#[derive(Debug, Clone, Args)]
pub struct LogoutArgs {
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// `--json`.
    #[command(flatten)]
    pub json: JsonArgs,
    /// `--config`, `--profile`.
    #[command(flatten)]
    pub profile: ProfileArgs,
}

/// `skysync config path`.
#[derive(Debug, Clone, Args)]
pub struct ConfigPathArgs {
    /// `--json`.
    #[command(flatten)]
    pub json: JsonArgs,
    /// `--config`, `--profile`.
    #[command(flatten)]
    pub profile: ProfileArgs,
}

/// `skysync config …`.
#[derive(Debug, Clone, Subcommand)]
#[command(after_help = "\
Examples:
  skysync config init
  skysync config set client_id 00000000-0000-0000-0000-000000000000
  skysync config show")]
pub enum ConfigCommand {
    /// Print the effective settings (secrets masked) and where each came from.
    #[command(after_help = "\
Exit code 3 (after printing) when a required setting is missing or a value is invalid.

Examples:
  skysync config show
  skysync --profile acme --json config show")]
    Show(ConfigShowArgs),
    /// Print the config file's path.
    #[command(after_help = "\
Examples:
  skysync config path
  chmod 600 \"$(skysync config path)\"")]
    Path(ConfigPathArgs),
    /// Write a commented config file for this profile (mode 0600), from prompts or flags.
    Init(crate::commands::config::InitArgs),
    /// Set one key of this profile in the config file, keeping its comments.
    Set(crate::commands::config::SetArgs),
}

/// `skysync token-store …`.
#[derive(Debug, Clone, Subcommand)]
#[command(after_help = "\
The token store is encrypted when a key is configured: SKYSYNC_TOKEN_KEY_FILE=PATH, or the systemd
credential skysync-token-key ($CREDENTIALS_DIRECTORY/skysync-token-key). Without one it is a 0600
plaintext file. A missing or wrong key is exit code 3 and changes nothing.

Examples:
  skysync token-store new-key /etc/skysync/token.key
  skysync token-store rekey --new-key-file /etc/skysync/token-2.key
  skysync token-store migrate --to postgres://skysync@db.internal/sky")]
pub enum TokenStoreCommand {
    /// Write a new random key file (mode 0600; refuses to overwrite).
    #[command(after_help = "\
Examples:
  skysync token-store new-key /etc/skysync/token.key
  skysync token-store new-key ~/.config/skysync/token.key")]
    NewKey(NewKeyArgs),
    /// Re-encrypt the token file and its backup under a new key (or back to plaintext), atomically
    /// and under the store lock. Reads them with the configured key (or as plaintext).
    Rekey(RekeyArgs),
    /// Move this profile's tokens to another store (`file` or a postgres:// URL), then remove
    /// them from the configured one.
    Migrate(MigrateArgs),
}

/// `skysync token-store migrate`.
#[derive(Debug, Clone, Args)]
#[command(after_help = "\
Both stores are locked while the tokens move; they are written to the destination, read back,
and only then removed from the configured store, so there is never a second live copy. An
interrupted migrate is finished by running it again. Afterwards set token_store in the profile
(or SKYSYNC_TOKEN_STORE) to the destination. The URL must not hold a password: use PGPASSWORD,
~/.pgpass or db_password_file.

Examples:
  skysync token-store migrate --to 'postgres://skysync@db.internal/sky?sslmode=verify-full'
  skysync token-store migrate --to file")]
pub struct MigrateArgs {
    /// The destination: `file` (the profile's token file) or a postgres:// URL.
    #[arg(long, value_name = "URL|file")]
    pub to: String,
    /// `--json`.
    #[command(flatten)]
    pub json: JsonArgs,
    /// `--config`, `--profile`.
    #[command(flatten)]
    pub profile: ProfileArgs,
}

/// `skysync token-store new-key`.
#[derive(Debug, Clone, Args)]
pub struct NewKeyArgs {
    /// Where to write the key.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// `--json`.
    #[command(flatten)]
    pub json: JsonArgs,
}

/// `skysync token-store rekey`.
#[derive(Debug, Clone, Args)]
#[command(after_help = "\
Afterwards point SKYSYNC_TOKEN_KEY_FILE (or the credential) at the new key: until then other
skysync runs stop with exit code 3 and change nothing. Running rekey again is safe: files already
under the new key are left as they are.

Examples:
  skysync token-store rekey --new-key-file /etc/skysync/token-2.key
  skysync token-store rekey --plaintext")]
pub struct RekeyArgs {
    /// The key to encrypt under from now on.
    #[arg(long, value_name = "FILE", required_unless_present = "plaintext", conflicts_with = "plaintext")]
    pub new_key_file: Option<PathBuf>,
    /// Decrypt the store back to a 0600 plaintext file.
    #[arg(long)]
    pub plaintext: bool,
    /// `--json`.
    #[command(flatten)]
    pub json: JsonArgs,
    /// `--config`, `--profile`.
    #[command(flatten)]
    pub profile: ProfileArgs,
}

/// `skysync sync` arguments.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "\
Examples:
  skysync sync                            # incremental; resumes where the last run stopped
  skysync sync constituents gifts --full  # re-sync from scratch
  skysync sync all --reconcile --deletes remove
  skysync sync --db 'postgres://skysync@db.internal/sky?sslmode=verify-full'
  skysync sync gifts --format jsonl --out - | jq .id
  skysync sync --dry-run                  # what would be fetched, no API calls
  skysync sync --list                     # the entity catalog"
)]
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
    /// Keep every version a run replaces (changed, deleted, or replaced by --full) in
    /// `<entity>_history` with valid_from/valid_to (SQLite or PostgreSQL only).
    #[arg(long)]
    pub history: bool,
    /// What reconciliation does with deleted rows [default: `deletes` in the `[sync]` table, else mark].
    #[arg(long, value_name = "MODE", ignore_case = true, value_parser = deletes_values())]
    pub deletes: Option<String>,
    /// Show what would be fetched, without calling the API.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the entity catalog and exit.
    #[arg(long)]
    pub list: bool,
    /// Client-side pace in API calls per second (env SKYSYNC_RATE_LIMIT, config `rate_limit`;
    /// default 5), or `off` to leave the pace to Blackbaud's 429s.
    #[arg(long, value_name = "N|off", value_parser = crate::settings::RateLimit::parse)]
    pub rate_limit: Option<crate::settings::RateLimit>,
    /// Stop cleanly after this many API calls (keeps a run within a share of the daily quota).
    #[arg(long, value_name = "N")]
    pub call_budget: Option<u64>,
    /// Most API calls per quota day over every run (env SKYSYNC_DAILY_QUOTA, config
    /// `daily_quota`); a run stops cleanly before the next call would go over.
    #[arg(long, value_name = "N")]
    pub daily_quota: Option<u64>,
    /// With --dry-run: count what each entity would read (one `limit=1` call per list, counted
    /// against the quota) and estimate the run's API calls.
    #[arg(long, requires = "dry_run")]
    pub estimate: bool,
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
    /// `--json`.
    #[command(flatten)]
    pub json: JsonArgs,
    /// `--config`, `--profile`.
    #[command(flatten)]
    pub profile: ProfileArgs,
    // After the options above: the monitoring heading would carry over to them.
    /// `--all-profiles`, `--wide`, `--ping-url`, `--metrics-file`.
    #[command(flatten)]
    pub routine: RoutineArgs,
}

/// `skysync sync` subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum SyncCommand {
    /// Show each entity's bookmark, last success, row count and last error (no API calls).
    #[command(after_help = "\
Examples:
  skysync sync status
  skysync sync status --db 'postgres://skysync@db.internal/sky' --json")]
    Status(SyncStatusArgs),
}

/// `skysync sync status`: where the sync state is (no `--format`: a JSONL sync is named by its
/// directory).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SyncStatusArgs {
    /// SQLite file or postgres:// URL (default: the config's `db`, else
    /// $XDG_DATA_HOME/skysync/PROFILE/skysync.db).
    #[arg(long, value_name = "PATH|URL", conflicts_with = "out")]
    pub db: Option<String>,
    /// The directory of a `sync --format jsonl --out DIR`.
    #[arg(long, value_name = "DIR")]
    pub out: Option<String>,
    /// `--json`.
    #[command(flatten)]
    pub json: JsonArgs,
    /// `--config`, `--profile`.
    #[command(flatten)]
    pub profile: ProfileArgs,
    // After the options above: the monitoring heading would carry over to them.
    /// `--all-profiles`, `--wide`, `--ping-url`, `--metrics-file`.
    #[command(flatten)]
    pub routine: RoutineArgs,
}

impl SyncStatusArgs {
    /// The same destination as `sync`'s options name it.
    pub fn sink(&self) -> SinkArgs {
        SinkArgs { db: self.db.clone(), format: self.out.as_ref().map(|_| "jsonl".into()), out: self.out.clone() }
    }
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
    /// Where rows go [default: db].
    #[arg(long, value_name = "FORMAT", ignore_case = true, value_parser = format_values())]
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

/// `consent-page`'s default port. The page's redirect URI is `http://localhost:8321/callback`,
/// the same one `skysync login` listens on, so a single registration with the application serves
/// both.
pub const CONSENT_PAGE_PORT: u16 = 8321;

/// `skysync consent-page`.
#[derive(Debug, Clone, Args)]
pub struct ConsentPageArgs {
    /// Port on 127.0.0.1. The page is at http://localhost:PORT/callback, which must be registered
    /// as a redirect URI of the application (8321: the same URI as `skysync login`).
    #[arg(long, default_value_t = CONSENT_PAGE_PORT)]
    pub port: u16,
    /// Directory of the built page [default: web/dist of the source tree, built by web/build.sh].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// `skysync completions`.
#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `--deletes`' values, each with what it does (shown by `--help`, completions and the man page).
fn deletes_values() -> clap::builder::PossibleValuesParser {
    use clap::builder::PossibleValue;
    clap::builder::PossibleValuesParser::new([
        PossibleValue::new("mark").help("Keep the row and set its deleted_at (the default)"),
        PossibleValue::new("remove").help("Delete the row"),
    ])
}

/// `--format`'s values.
fn format_values() -> clap::builder::PossibleValuesParser {
    use clap::builder::PossibleValue;
    clap::builder::PossibleValuesParser::new([
        PossibleValue::new("db").help("A table per entity in SQLite or PostgreSQL (--db; the default)"),
        PossibleValue::new("jsonl").help("One JSON record per line: a file per entity under --out, or stdout"),
    ])
}
