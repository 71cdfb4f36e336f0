//! The command line (clap derive). Secrets are never arguments: they would show in `ps`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Keeps Blackbaud SKY API access alive without a person: consent once, then refresh forever.
#[derive(Debug, Parser)]
#[command(name = "skysync", version, about, after_help = crate::exit::HELP_TEXT)]
pub struct Cli {
    /// Global options.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// More logging on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// Machine-readable JSON on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// Config file (default: $XDG_CONFIG_HOME/skysync/config.toml).
    #[arg(long, env = "SKYSYNC_CONFIG", value_name = "PATH", global = true)]
    pub config: Option<PathBuf>,
    /// Profile in the config file (one per Blackbaud environment).
    #[arg(long, env = "SKYSYNC_PROFILE", value_name = "NAME", global = true)]
    pub profile: Option<String>,
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
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Consent in a browser once and store the tokens.
    Login(LoginArgs),
    /// Store a token bundle exported by the consent page.
    Import(ImportArgs),
    /// Hand this profile's tokens over as a bundle (for another host or app).
    Export(ExportArgs),
    /// Print a valid access token (refreshing it if due).
    Token(TokenArgs),
    /// Show who consented and when the tokens expire (works offline).
    Status(StatusArgs),
    /// Rotate the refresh token now.
    Renew,
    /// Make an authenticated SKY API call and print the JSON.
    Api(ApiArgs),
    /// Remove this profile's tokens.
    Logout(LogoutArgs),
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Run the SKY API simulator.
    Sim(crate::sim::args::SimArgs),
    /// Sync SKY API data into a database.
    Sync(crate::sync::SyncArgs),
    /// A self-contained demo against the simulator.
    Demo(crate::sync::DemoArgs),
    /// Serve the browser consent page on loopback (for admins who consent on their own machine).
    ConsentPage(crate::consent_page::ConsentPageArgs),
    /// Encryption of the token store at rest: make a key, re-encrypt under a new key.
    #[command(subcommand)]
    TokenStore(TokenStoreCommand),
}

/// `skysync login`.
#[derive(Debug, Clone, Args)]
#[command(after_help = "\
The new tokens replace the profile's stored tokens (the previous file is kept as tokens.json.bak
until the next save). Use a profile per Blackbaud environment: `skysync --profile NAME login`.
The redirect_uri (default http://localhost:8321/callback) must be registered with the application;
`login` listens on its loopback port. On a machine without a browser, use --manual.")]
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
}

/// `skysync import`.
#[derive(Debug, Clone, Args)]
#[command(after_help = "\
The stored tokens are replaced (the last three token files are kept as tokens.json.bak,
tokens.json.bak.2 and tokens.json.bak.3). Without --force, import refuses tokens that still work
for another Blackbaud environment (import a second environment into its own profile:
`skysync --profile NAME import`), a refresh token that has expired or is older than the stored
one, and an authorization code obtained before the stored consent. A code that was already sent
is always refused: codes work once, and a server may revoke the whole consent on a replay.")]
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
}

/// `skysync export`.
#[derive(Debug, Clone, Args)]
#[command(after_help = "\
The bundle is what `skysync import` (on another host or profile) and the JavaScript bindings read.
It holds the refresh token in plain text: move it once, import it, delete it.
A grant must have one refresher (each refresh may rotate the refresh token and leave the other
holder with a dead one), so this profile hands its tokens over: `token`, `sync` and `api` then exit
4 naming where they went, until a bundle is imported here again. --copy keeps using them here too.")]
pub struct ExportArgs {
    /// Where to write the bundle (a new file, mode 0600), or `-` for stdout.
    #[arg(value_name = "FILE|-")]
    pub file: String,
    /// Copy instead of handing over: this profile keeps refreshing the tokens too (only safe when
    /// the other holder never refreshes them).
    #[arg(long)]
    pub copy: bool,
}

/// `skysync token`.
#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    /// Print `Authorization: Bearer …` instead of the bare token.
    #[arg(long)]
    pub header: bool,
}

/// `skysync status`.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {}

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
}

/// `skysync logout`.
#[derive(Debug, Clone, Args)]
pub struct LogoutArgs {
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// `skysync config …`.
#[derive(Debug, Clone, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective settings (secrets masked) and where each came from.
    Show,
    /// Print the config file's path.
    Path,
}

/// `skysync token-store …`.
#[derive(Debug, Clone, Subcommand)]
#[command(after_help = "\
The token store is encrypted when a key is configured: SKYSYNC_TOKEN_KEY_FILE=PATH, or the systemd
credential skysync-token-key ($CREDENTIALS_DIRECTORY/skysync-token-key). Without one it is a 0600
plaintext file. A missing or wrong key is exit code 3 and changes nothing.")]
pub enum TokenStoreCommand {
    /// Write a new random key file (mode 0600; refuses to overwrite).
    NewKey(NewKeyArgs),
    /// Re-encrypt the token file and its backup under a new key (or back to plaintext), atomically
    /// and under the store lock. Reads them with the configured key (or as plaintext).
    Rekey(RekeyArgs),
}

/// `skysync token-store new-key`.
#[derive(Debug, Clone, Args)]
pub struct NewKeyArgs {
    /// Where to write the key.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

/// `skysync token-store rekey`.
#[derive(Debug, Clone, Args)]
#[command(after_help = "\
Afterwards point SKYSYNC_TOKEN_KEY_FILE (or the credential) at the new key: until then other
skysync runs stop with exit code 3 and change nothing. Running rekey again is safe: files already
under the new key are left as they are.")]
pub struct RekeyArgs {
    /// The key to encrypt under from now on.
    #[arg(long, value_name = "FILE", required_unless_present = "plaintext", conflicts_with = "plaintext")]
    pub new_key_file: Option<PathBuf>,
    /// Decrypt the store back to a 0600 plaintext file.
    #[arg(long)]
    pub plaintext: bool,
}
