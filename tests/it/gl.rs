//! Financial Edge NXT general-ledger lists (`projects`, `journal_entry_batches`) against the
//! simulator, into SQLite and a real PostgreSQL server: records are keyed by the catalog's `key`
//! field (`project_id`, `batch_id`), not `id`, through sync, incremental runs and reconciliation.

use std::collections::BTreeMap;

use serde_json::Value;
use skysync_cli::sim::SimHandle;
use skysync_cli::sink;
use skysync_cli::sync::engine::{self, EngineOptions, RunMode, RunReport};
use skysync_cli::sync::progress::Silent;
use skysync_core::api::ApiClient;
use skysync_core::catalog;
use skysync_core::host::SystemClock;
use skysync_tests::db::TestDb;
use skysync_tests::sky::{api_client, sim_config, start_sim};

const GL: [&str; 2] = ["projects", "journal_entry_batches"];

async fn run(db: &TestDb, api: &ApiClient, o: &EngineOptions) -> RunReport {
    let mut s = sink::open(db.spec()).await.unwrap();
    let entities: Vec<_> = GL.iter().map(|n| catalog::find(n).unwrap()).collect();
    let r = engine::run(api, s.as_mut(), &entities, o, &SystemClock, &Silent).await.unwrap();
    assert!(r.ok(), "{:#?}", r.entities);
    r
}

/// The live rows of `entity` equal the simulator's records, stored under their key.
async fn assert_equals_source(db: &TestDb, sim: &SimHandle, entity: &str) {
    let key = catalog::find(entity).unwrap().key;
    let rows: BTreeMap<String, Value> =
        db.reader().await.rows(entity).await.into_iter().filter(|r| !r.2).map(|r| (r.0, r.1)).collect();
    let mut source = sim.live_ids(entity);
    source.sort();
    assert_eq!(rows.keys().cloned().collect::<Vec<_>>(), source, "{entity}: ids differ from the source");
    for id in &source {
        let want = sim.record(entity, id).unwrap();
        assert_eq!(want[key].to_string(), *id, "{entity}: the simulator keys records by {key}");
        assert!(want.get("id").is_none(), "{entity}: general-ledger records have no `id`");
        assert_eq!(rows[id], want, "{entity} {id}: stored data differs from the source");
    }
}

async fn general_ledger_lists_sync_by_their_key_fields(db: TestDb) {
    let sim = start_sim(sim_config(2000)).await;
    let api = api_client(&sim, 0.0);
    let o = EngineOptions { page_size: Some(7), ..EngineOptions::default() };
    let r = run(&db, &api, &o).await;
    for e in GL {
        assert_equals_source(&db, &sim, e).await;
        let report = r.entities.iter().find(|x| x.entity == e).unwrap();
        assert_eq!(report.mode, RunMode::Initial);
        assert!(report.added >= 20, "{e}: {}", report.added);
    }

    // Changes: the next run fetches from the last run (minus the overlap) and lands them.
    let changed = sim.modify("projects", 3);
    sim.add("journal_entry_batches", 2);
    let r = run(&db, &api, &o).await;
    let projects = r.entities.iter().find(|x| x.entity == "projects").unwrap();
    assert_eq!(projects.mode, RunMode::Incremental);
    assert_eq!(projects.changed, changed.len() as u64);
    for e in GL {
        assert_equals_source(&db, &sim, e).await;
    }

    // Deletes are found by key too.
    let gone = sim.delete("journal_entry_batches", 2);
    run(&db, &api, &EngineOptions { reconcile: true, ..o.clone() }).await;
    let rows = db.reader().await.rows("journal_entry_batches").await;
    for id in &gone {
        assert!(rows.iter().any(|r| &r.0 == id && r.2), "batch {id} is marked deleted");
    }
    assert_equals_source(&db, &sim, "journal_entry_batches").await;
    sim.shutdown().await;
}

#[tokio::test]
async fn general_ledger_lists_sync_by_their_key_fields_sqlite() {
    general_ledger_lists_sync_by_their_key_fields(TestDb::sqlite("skysync.db")).await
}

#[tokio::test]
async fn general_ledger_lists_sync_by_their_key_fields_postgres() {
    skysync_tests::skip_in_fast_tier!("PostgreSQL");
    general_ledger_lists_sync_by_their_key_fields(TestDb::postgres()).await
}
