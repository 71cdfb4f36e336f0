//! Sync throughput and peak memory: 1M records from the simulator into SQLite.
//!
//! `cargo bench -p skysync-cli --bench sync_memory` (release build). Knobs (environment):
//! `SKYSYNC_BENCH_RECORDS` (default 1000000 constituents), `SKYSYNC_BENCH_PAGE_SIZE` (default
//! 5000, the production size), `SKYSYNC_BENCH_DB` (`sqlite`, default, or a `postgres://` URL).
//!
//! The simulator runs in a child process (this same executable, re-run with
//! `SKYSYNC_BENCH_ROLE=sim`), so the peak RSS printed (`VmHWM` of /proc/self/status) is the sync's
//! alone: API client, page parsing, engine and sink. It is sampled after a tenth of the records and
//! at the end: memory bounded by the page size shows as two close figures.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use skysync_cli::runtime::TokioRuntime;
use skysync_cli::sim::{SimConfig, Simulator};
use skysync_cli::sink::{self, SinkSpec};
use skysync_cli::sync::engine::{self, EngineOptions, EntityReport, RunMode};
use skysync_cli::sync::progress::{Phase, Progress};
use skysync_core::api::ApiClient;
use skysync_core::catalog::{self, Entity};
use skysync_core::config::ApiConfig;
use skysync_core::host::{Clock, OsEntropy, SystemClock};
use skysync_core::http::{HttpClient, HttpResponse, ReqwestClient};
use skysync_core::secret::{ClientSecret, SubscriptionKey};
use skysync_core::token::parse_token_response;
use skysync_core::{ClientAuth, Endpoints, MemoryStore, OAuthConfig, RenewalPolicy, Session, SessionParts, TokenSet};

use common::{env_u64, vm_hwm_kib};

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

struct Sampler {
    at_records: u64,
    early_hwm: AtomicU64,
}

impl Progress for Sampler {
    fn started(&self, _: &Entity, _: RunMode) {}
    fn page(&self, _: &Entity, _: Phase, records: u64, pages: u64, _: Option<u64>) {
        if records >= self.at_records && self.early_hwm.load(Ordering::Relaxed) == 0 {
            self.early_hwm.store(vm_hwm_kib(), Ordering::Relaxed);
        }
        if pages.is_multiple_of(20) {
            eprintln!("  {records} records, {pages} pages, peak RSS {}", mib(vm_hwm_kib()));
        }
    }
    fn finished(&self, _: &Entity, _: &EntityReport) {}
}

fn run_sim(records: u64) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    rt.block_on(async {
        let sim = Simulator::start(SimConfig { records, ..SimConfig::default() }).await.unwrap();
        let tokens = sim.issue_tokens();
        println!("{}", serde_json::json!({ "base": sim.base_url().as_str(), "tokens": tokens }));
        std::io::stdout().flush().unwrap();
        // Serve until the parent closes our stdin (or dies).
        tokio::task::spawn_blocking(|| {
            let mut sink = String::new();
            let _ = std::io::stdin().read_line(&mut sink);
        })
        .await
        .unwrap();
    });
}

fn main() {
    let records = env_u64("SKYSYNC_BENCH_RECORDS", 1_000_000);
    if std::env::var("SKYSYNC_BENCH_ROLE").as_deref() == Ok("sim") {
        return run_sim(records);
    }
    if std::env::args().any(|a| a == "--list") {
        // `cargo bench -- --list` / `cargo test --benches` probing: nothing to list.
        return;
    }
    let page_size = env_u64("SKYSYNC_BENCH_PAGE_SIZE", 5000) as u32;
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env("SKYSYNC_BENCH_ROLE", "sim")
        .env("SKYSYNC_BENCH_RECORDS", records.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting the simulator process");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let hello: serde_json::Value = serde_json::from_str(&line).expect("simulator handshake");
    let base: url::Url = hello["base"].as_str().unwrap().parse().unwrap();

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spec = match std::env::var("SKYSYNC_BENCH_DB") {
        Ok(url) if url.starts_with("postgres") => SinkSpec::postgres(url),
        _ => SinkSpec::Sqlite(dir.path().join("bench.db")),
    };
    let baseline = vm_hwm_kib();
    let (report, early) = rt.block_on(async {
        let cfg = SimConfig::default();
        let body = serde_json::to_vec(&hello["tokens"]).unwrap();
        let token_url = base.join("token").unwrap();
        let resp =
            HttpResponse { status: 200, headers: vec![("content-type".into(), "application/json".into())], body };
        let tokens = TokenSet::from_exchange(
            &cfg.client_id,
            parse_token_response(&token_url, &resp).unwrap(),
            SystemClock.now(),
        )
        .unwrap();
        let http: Arc<dyn HttpClient> = Arc::new(ReqwestClient::new().unwrap());
        let session = Session::new(SessionParts {
            oauth: OAuthConfig {
                client_id: cfg.client_id.clone(),
                client_secret: Some(ClientSecret::new(cfg.client_secret.clone())),
                redirect_uri: "http://localhost:8321/callback".parse().unwrap(),
                endpoints: Endpoints {
                    authorize: base.join("oauth/authorize").unwrap(),
                    token: token_url,
                    api: base.clone(),
                },
                client_auth: ClientAuth::Basic,
                environment_id: None,
            },
            policy: RenewalPolicy::default(),
            http: http.clone(),
            store: Arc::new(MemoryStore::with(tokens)),
            clock: Arc::new(SystemClock),
            runtime: Arc::new(TokioRuntime),
        });
        let api = ApiClient::new(
            session,
            http,
            Arc::new(TokioRuntime),
            Arc::new(SystemClock),
            Arc::new(OsEntropy),
            ApiConfig { base: base.clone(), subscription_key: SubscriptionKey::new(cfg.subscription_key) },
            0.0,
        );
        let mut sink = sink::open(&spec).await.unwrap();
        let sampler = Sampler { at_records: records / 10, early_hwm: AtomicU64::new(0) };
        let options = EngineOptions { page_size: Some(page_size), ..EngineOptions::default() };
        let entities = [catalog::find("constituents").unwrap()];
        eprintln!("syncing {records} constituents, pages of {page_size}, into {}", spec.describe());
        let report = engine::run(&api, sink.as_mut(), &entities, &options, &SystemClock, &sampler).await.unwrap();
        (report, sampler.early_hwm.load(Ordering::Relaxed))
    });
    drop(child.stdin.take());
    let _ = child.wait();

    let e = &report.entities[0];
    assert!(report.ok(), "bench sync failed: {:?}", e.error);
    assert_eq!(e.records, records, "every record synced");
    let secs = report.duration.as_secs_f64().max(f64::EPSILON);
    let db_size = match &spec {
        SinkSpec::Sqlite(p) => std::fs::metadata(p).map(|m| m.len()).unwrap_or(0),
        _ => 0,
    };
    println!("sync_memory: {records} records, page size {page_size}, {}", report.sink);
    println!("  time           {:.1} s", secs);
    println!("  throughput     {:.0} records/s", records as f64 / secs);
    println!("  pages          {} ({} API calls)", e.pages, report.api.calls);
    println!("  peak RSS       {} (before the sync: {})", mib(vm_hwm_kib()), mib(baseline));
    println!("  peak RSS @10%  {} (after {} records)", mib(early), records / 10);
    if db_size > 0 {
        println!("  SQLite file    {:.1} MiB", db_size as f64 / (1024.0 * 1024.0));
    }
}
