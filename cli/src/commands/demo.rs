//! `skysync demo`: the whole flow against the simulator, with no Blackbaud account.
//!
//! Starts the simulator on a free loopback port, consents automatically (the real authorization
//! code + PKCE flow: the simulator's consent page redirects at once), stores the tokens in a
//! throwaway data directory, syncs the default entities into a fresh SQLite file, and runs a
//! sample query on it.

use std::path::Path;

use anyhow::Context as _;
use skysync_core::catalog::{self, DEFAULT_ENTITIES};
use skysync_core::host::{OsEntropy, SystemClock};
use skysync_core::secret::{ClientSecret, SubscriptionKey};
use skysync_core::{ClientAuth, Endpoints, RenewalPolicy, parse_callback, start_authorization};

use crate::args::DemoArgs;
use crate::config::SyncConfig;
use crate::context::{Context, Output};
use crate::settings::{DEFAULT_RATE_LIMIT, Settings};
use crate::sim::{SimConfig, SimHandle, Simulator};
use crate::sink::{self, SinkSpec};
use crate::sync::engine::{self, EngineOptions};
use crate::sync::progress::{Bars, LogLines, Progress};
use crate::sync::report;

/// The sample query the demo runs: the five largest gifts with their donors, from the typed
/// views every sync creates (docs/VIEWS.md).
pub const SAMPLE_QUERY: &str = "\
SELECT c.name   AS donor,
       g.amount AS amount,
       g.date   AS date,
       g.type   AS type
FROM v_gifts g
JOIN v_constituents c ON c.id = g.constituent_id
WHERE g.deleted_at IS NULL
ORDER BY g.amount DESC
LIMIT 5;";

/// Runs the demo.
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let out = Output::detect(false);
    let sim = Simulator::start(SimConfig { records: args.records, ..SimConfig::default() })
        .await
        .context("starting the SKY API simulator")?;
    out.note(format!("skysync demo: SKY API simulator on {} ({} constituents)", sim.base_url(), args.records));
    let dir = tempfile::Builder::new().prefix("skysync-demo-").tempdir().context("creating a temporary directory")?;
    let db_path = args.db.clone().unwrap_or_else(|| dir.path().join("skysync.db"));
    if db_path.exists() {
        anyhow::bail!(
            "{} already exists; the demo syncs into a fresh database (choose another --db)",
            db_path.display()
        );
    }
    let ctx = Context::new("demo".into(), sim_settings(&sim), dir.path().join("data"), out);
    consent(&ctx).await?;
    sync(&ctx, &db_path).await?;
    show(ctx.output(), &args, &db_path)?;
    if args.keep {
        let kept = dir.keep();
        ctx.output().note(format!("kept {}", kept.display()));
    }
    sim.shutdown().await;
    Ok(())
}

/// A profile pointed at the simulator.
fn sim_settings(sim: &SimHandle) -> Settings {
    let cfg = sim.config();
    Settings {
        client_id: cfg.client_id.clone(),
        client_secret: Some(ClientSecret::new(cfg.client_secret.clone())),
        subscription_key: Some(SubscriptionKey::new(cfg.subscription_key.clone())),
        redirect_uri: "http://localhost:8321/callback".parse().expect("valid URL"),
        endpoints: Endpoints { authorize: sim.authorize_url(), token: sim.token_url(), api: sim.api_url() },
        client_auth: ClientAuth::Basic,
        environment_id: None,
        db_password_file: None,
        token_key_file: None,
        token_store: crate::token_store::StoreSpec::File,
        notify_command: None,
        policy: RenewalPolicy::default(),
        sync: SyncConfig::default(),
    }
}

/// Consent: what a person does in the browser, done here by following the consent page's
/// redirect by hand. The tokens go into the demo's store.
async fn consent(ctx: &Context) -> anyhow::Result<()> {
    let pending = start_authorization(&ctx.settings().oauth(), &OsEntropy);
    let no_redirect = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let resp = no_redirect.get(pending.url.clone()).send().await.context("opening the consent page")?;
    let location = resp
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .context("the consent page did not redirect back")?
        .to_owned();
    let code = parse_callback(&location, &pending.state, false)?;
    let tokens = crate::login::exchange_and_store(ctx, code, Some(pending.verifier), &pending.redirect_uri).await?;
    ctx.output().note(format!(
        "consented as {} to {}; tokens stored in {}",
        tokens.identity.user_display(),
        tokens.identity.environment_display(),
        ctx.data_dir().display()
    ));
    Ok(())
}

/// Syncs the default entities into `db_path` and prints the run's summary.
async fn sync(ctx: &Context, db_path: &Path) -> anyhow::Result<()> {
    let out = ctx.output();
    let entities: Vec<_> = DEFAULT_ENTITIES.iter().filter_map(|n| catalog::find(n)).collect();
    let api = ctx.api_client(DEFAULT_RATE_LIMIT, None)?;
    let mut sink = sink::open(&SinkSpec::Sqlite(db_path.to_owned())).await?;
    // Smaller pages than production (5000) so the demo shows a few pages per entity.
    let options = EngineOptions { page_size: Some(500), ..EngineOptions::default() };
    let progress: Box<dyn Progress> = if out.stderr_tty { Box::new(Bars::new()) } else { Box::new(LogLines) };
    let run = engine::run(&api, sink.as_mut(), &entities, &options, &SystemClock, progress.as_ref()).await?;
    drop(progress);
    drop(sink);
    out.line(report::render(&run, out.width))?;
    if !run.ok() {
        anyhow::bail!("the demo sync did not finish");
    }
    Ok(())
}

/// Where the data is, the sample query and its answer, and what to do next.
fn show(out: &Output, args: &DemoArgs, db_path: &Path) -> anyhow::Result<()> {
    let whereabouts = if args.keep || args.db.is_some() {
        format!("The data is in {}", db_path.display())
    } else {
        format!(
            "The data is in {} (removed when the demo ends; add --keep to explore it with sqlite3)",
            db_path.display()
        )
    };
    out.line(format!("\n{whereabouts}. A sample query on it:\n"))?;
    out.line(SAMPLE_QUERY)?;
    out.line(String::new())?;
    out.line(sample(db_path)?)?;
    out.line(
        "\nNext: point skysync at Blackbaud. Put client_id, client_secret and subscription_key in \
         ~/.config/skysync/config.toml (see the README), run `skysync login` once, then `skysync sync` nightly.",
    )?;
    Ok(())
}

/// Runs [`SAMPLE_QUERY`] and formats the rows.
fn sample(db: &Path) -> anyhow::Result<String> {
    let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut st = conn.prepare(SAMPLE_QUERY)?;
    let mut rows = st.query([])?;
    let mut text = format!("{:<40} {:>12}  {:<10}  type\n", "donor", "amount", "date");
    while let Some(r) = rows.next()? {
        let donor: Option<String> = r.get(0)?;
        let amount: Option<f64> = r.get(1)?;
        let date: Option<String> = r.get(2)?;
        let kind: Option<String> = r.get(3)?;
        text.push_str(&format!(
            "{:<40} {:>12.2}  {:<10}  {}\n",
            donor.unwrap_or_default(),
            amount.unwrap_or_default(),
            date.unwrap_or_default(),
            kind.unwrap_or_default()
        ));
    }
    Ok(text.trim_end().to_owned())
}
