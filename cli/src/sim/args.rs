//! `skysync sim`: run the simulator in the foreground.

use std::time::Duration;

use super::{ActionsPaging, BasicDecoding, FaultRates, PreservedRefreshExpiry, SimConfig, Simulator};

/// Options of `skysync sim`. The client secret and subscription key come from the environment
/// (`SKYSYNC_SIM_CLIENT_SECRET`, `SKYSYNC_SIM_SUBSCRIPTION_KEY`), never from arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    /// Port on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 8330)]
    pub port: u16,
    /// Number of constituents; other entities scale from it.
    #[arg(long, default_value_t = 1000)]
    pub records: u64,
    /// Seed for the generated data and random faults.
    #[arg(long, default_value_t = SimConfig::default().seed)]
    pub seed: u64,
    /// Access token lifetime in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    pub access_token_ttl: u64,
    /// API calls allowed per second (429 beyond).
    #[arg(long, value_name = "N")]
    pub rate_limit: Option<u32>,
    /// API calls allowed per day (403 quota beyond).
    #[arg(long, value_name = "N")]
    pub daily_quota: Option<u64>,
    /// Make the consent step deny access.
    #[arg(long)]
    pub deny_consent: bool,
    /// Probability (0..1) that an API call fails with 500.
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub fail_rate_500: f64,
    /// Probability (0..1) that an API call gets 429.
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub fail_rate_429: f64,
    /// Probability (0..1) that an API call's connection drops without a response.
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub drop_rate: f64,
    /// The application id clients must use.
    #[arg(long, default_value = "sim-client-id")]
    pub client_id: String,
    /// A registered redirect URI (repeatable; replaces the defaults). Matched as an exact
    /// string, as Blackbaud does.
    #[arg(long = "redirect-uri", value_name = "URI")]
    pub redirect_uris: Vec<String>,
    /// Also accept any http://127.0.0.1:PORT/… or http://localhost:PORT/… redirect URI (lenient;
    /// Blackbaud does not).
    #[arg(long)]
    pub any_loopback_redirect: bool,
    /// How /token reads HTTP Basic credentials: `raw` as Blackbaud does, or `form-decoded` as
    /// RFC 6749 §2.3.1 describes.
    #[arg(long, value_enum, value_name = "MODE", default_value_t = BasicDecoding::Raw)]
    pub basic_decoding: BasicDecoding,
    /// What a refresh with preserve_refresh_token=true does to the refresh token's expiry.
    #[arg(long, value_enum, value_name = "MODE", default_value_t = PreservedRefreshExpiry::FixedReportsRemaining)]
    pub preserved_refresh_expiry: PreservedRefreshExpiry,
    /// Refresh token lifetime in seconds.
    #[arg(long, value_name = "SECS", default_value_t = SimConfig::default().refresh_token_ttl.as_secs())]
    pub refresh_token_ttl: u64,
    /// Let a code exchange authenticate with client_id and the PKCE verifier alone.
    #[arg(long)]
    pub public_client: bool,
    /// End the first quota day this many seconds after start instead of at midnight UTC.
    #[arg(long, value_name = "SECS")]
    pub quota_day_ends_after: Option<u64>,
    /// Make next_link repeat the caller's filters (include_inactive, fields, …); by default it
    /// carries only limit, last_modified/date_added and the cursor.
    #[arg(long)]
    pub next_link_keeps_filters: bool,
    /// How the actions list hands out its cursor: `sort-token` like every list,
    /// `next-link-continuation` or `body-continuation`.
    #[arg(long, value_enum, value_name = "MODE", default_value_t = ActionsPaging::SortToken)]
    pub actions_paging: ActionsPaging,
    /// Hide records changed less than this many seconds ago from lists Blackbaud documents a
    /// latency for.
    #[arg(long, value_name = "SECS")]
    pub list_lag: Option<u64>,
    /// Apply --list-lag to every list.
    #[arg(long, requires = "list_lag")]
    pub list_lag_everywhere: bool,
    /// Give this many records in the middle of every list one shared date_modified.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub date_modified_ties: u64,
    /// From this record (0-based) on, list runs of 500 records newest first, so last_modified
    /// lists are not in ascending date_modified order.
    #[arg(long, value_name = "N")]
    pub unordered_from: Option<u64>,
    /// Probability (0..1) that an API answer's body is cut off halfway.
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub truncate_rate: f64,
}

impl SimArgs {
    /// The simulator configuration these options (and the environment) describe.
    pub fn to_config(&self) -> anyhow::Result<SimConfig> {
        for (name, p) in [
            ("--fail-rate-500", self.fail_rate_500),
            ("--fail-rate-429", self.fail_rate_429),
            ("--drop-rate", self.drop_rate),
            ("--truncate-rate", self.truncate_rate),
        ] {
            anyhow::ensure!((0.0..=1.0).contains(&p), "{name} must be between 0 and 1");
        }
        let d = SimConfig::default();
        let env = |name: &str, default: String| std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or(default);
        Ok(SimConfig {
            port: self.port,
            client_id: self.client_id.clone(),
            client_secret: env("SKYSYNC_SIM_CLIENT_SECRET", d.client_secret.clone()),
            subscription_key: env("SKYSYNC_SIM_SUBSCRIPTION_KEY", d.subscription_key.clone()),
            redirect_uris: if self.redirect_uris.is_empty() {
                d.redirect_uris.clone()
            } else {
                self.redirect_uris.clone()
            },
            allow_any_loopback_redirect: self.any_loopback_redirect,
            basic_decoding: self.basic_decoding,
            preserved_refresh_expiry: self.preserved_refresh_expiry,
            access_token_ttl: Duration::from_secs(self.access_token_ttl),
            refresh_token_ttl: Duration::from_secs(self.refresh_token_ttl),
            public_client: self.public_client,
            quota_day_ends_after: self.quota_day_ends_after.map(Duration::from_secs),
            next_link_keeps_filters: self.next_link_keeps_filters,
            actions_paging: self.actions_paging,
            list_lag: self.list_lag.map(Duration::from_secs),
            list_lag_everywhere: self.list_lag_everywhere,
            date_modified_ties: self.date_modified_ties,
            unordered_from: self.unordered_from,
            records: self.records,
            seed: self.seed,
            deny_consent: self.deny_consent,
            rate_limit_per_sec: self.rate_limit,
            daily_quota: self.daily_quota,
            faults: FaultRates {
                api_500: self.fail_rate_500,
                api_429: self.fail_rate_429,
                api_drop: self.drop_rate,
                api_truncated: self.truncate_rate,
                ..FaultRates::default()
            },
            ..d
        })
    }
}

/// Starts the simulator, prints how to point skysync at it, and serves until Ctrl-C or SIGTERM.
pub async fn run(args: SimArgs) -> anyhow::Result<()> {
    let cfg = args.to_config()?;
    let sim = Simulator::start(cfg.clone()).await?;
    let redirect = cfg.redirect_uris.first().cloned().unwrap_or_default();
    let q = |s: &str| shell_quote(s);
    println!("SKY API simulator listening on {}", sim.base_url());
    println!("  authorize:  {}", sim.authorize_url());
    println!("  token:      {}", sim.token_url());
    println!("  api:        {}", sim.api_url());
    println!("  control:    {}_sim/control (stats: {}_sim/stats)", sim.base_url(), sim.base_url());
    println!("  records:    {} constituents (seed {})", cfg.records, cfg.seed);
    println!();
    println!("Point skysync at it with:");
    println!("export SKYSYNC_AUTH_URL={}", q(sim.authorize_url().as_str()));
    println!("export SKYSYNC_TOKEN_URL={}", q(sim.token_url().as_str()));
    println!("export SKYSYNC_API_URL={}", q(sim.api_url().as_str()));
    println!("export SKYSYNC_CLIENT_ID={}", q(&cfg.client_id));
    println!("export SKYSYNC_CLIENT_SECRET={}", q(&cfg.client_secret));
    println!("export SKYSYNC_SUBSCRIPTION_KEY={}", q(&cfg.subscription_key));
    println!("export SKYSYNC_REDIRECT_URI={}", q(&redirect));
    println!();
    println!("Press Ctrl-C to stop.");
    wait_for_signal().await;
    sim.shutdown().await;
    Ok(())
}

fn shell_quote(s: &str) -> String {
    if s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./:=@%+,".contains(&b)) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        sim: SimArgs,
    }

    #[test]
    fn flags_map_onto_the_config() {
        let cli = Cli::parse_from([
            "sim",
            "--port",
            "0",
            "--records",
            "42",
            "--rate-limit",
            "5",
            "--daily-quota",
            "1000",
            "--deny-consent",
            "--fail-rate-500",
            "0.25",
            "--redirect-uri",
            "http://localhost:9000/cb",
            "--redirect-uri",
            "https://app.example.org/cb",
            "--basic-decoding",
            "form-decoded",
            "--preserved-refresh-expiry",
            "fixed-reports-full-lifetime",
            "--any-loopback-redirect",
            "--refresh-token-ttl",
            "600",
            "--public-client",
            "--quota-day-ends-after",
            "3600",
            "--next-link-keeps-filters",
            "--actions-paging",
            "body-continuation",
            "--list-lag",
            "1800",
            "--list-lag-everywhere",
            "--truncate-rate",
            "0.5",
        ]);
        let cfg = cli.sim.to_config().unwrap();
        assert_eq!((cfg.port, cfg.records, cfg.rate_limit_per_sec, cfg.daily_quota), (0, 42, Some(5), Some(1000)));
        assert!(cfg.deny_consent);
        assert_eq!(cfg.faults.api_500, 0.25);
        assert_eq!(cfg.redirect_uris, ["http://localhost:9000/cb", "https://app.example.org/cb"]);
        assert_eq!(cfg.access_token_ttl, Duration::from_secs(3600));
        assert_eq!(cfg.basic_decoding, BasicDecoding::FormDecoded);
        assert_eq!(cfg.preserved_refresh_expiry, PreservedRefreshExpiry::FixedReportsFullLifetime);
        assert!(cfg.allow_any_loopback_redirect);
        assert_eq!(cfg.refresh_token_ttl, Duration::from_secs(600));
        assert!(cfg.public_client && cfg.next_link_keeps_filters && cfg.list_lag_everywhere);
        assert_eq!(cfg.quota_day_ends_after, Some(Duration::from_secs(3600)));
        assert_eq!(cfg.actions_paging, ActionsPaging::BodyContinuation);
        assert_eq!(cfg.list_lag, Some(Duration::from_secs(1800)));
        assert_eq!(cfg.faults.api_truncated, 0.5);
        let defaults = Cli::parse_from(["sim"]).sim;
        assert_eq!(defaults.port, 8330);
        let d = defaults.to_config().unwrap();
        assert_eq!(d.redirect_uris, SimConfig::default().redirect_uris);
        let library = SimConfig::default();
        assert_eq!(
            (d.refresh_token_ttl, d.public_client, d.quota_day_ends_after, d.next_link_keeps_filters),
            (
                library.refresh_token_ttl,
                library.public_client,
                library.quota_day_ends_after,
                library.next_link_keeps_filters
            ),
            "the CLI's list and token defaults are the library's"
        );
        assert_eq!((d.actions_paging, d.list_lag, d.list_lag_everywhere), (library.actions_paging, None, false));
        assert_eq!(
            (d.basic_decoding, d.preserved_refresh_expiry, d.allow_any_loopback_redirect),
            (BasicDecoding::Raw, PreservedRefreshExpiry::FixedReportsRemaining, false),
            "the CLI's defaults are the library's"
        );
        let bad = Cli::parse_from(["sim", "--drop-rate", "2"]).sim;
        assert!(bad.to_config().is_err());
        assert!(Cli::try_parse_from(["sim", "--list-lag-everywhere"]).is_err(), "everywhere needs a lag");
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote("http://127.0.0.1:8330/token"), "http://127.0.0.1:8330/token");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }
}
