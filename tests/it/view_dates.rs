//! Texts that look like dates but are not (`2023-02-30`) in the typed views: SQLite and a real
//! PostgreSQL server both answer `NULL` for them, and neither fails the query (a plain cast in
//! PostgreSQL would fail every query on the view).

use skysync_cli::sink;
use skysync_cli::sync::engine::{self, EngineOptions};
use skysync_cli::sync::progress::Silent;
use skysync_core::catalog;
use skysync_core::host::SystemClock;
use skysync_tests::db::{Reader, TestDb};
use skysync_tests::sky::{api_client, sim_config, start_sim};

/// Sets `field` of events row `id` to the JSON `value`.
async fn set_field(reader: &Reader, id: &str, field: &str, value: &str) {
    let sql = match reader {
        Reader::Sqlite(_) => {
            format!("UPDATE events SET data = json_set(data, '$.{field}', json('{value}')) WHERE id = '{id}'")
        }
        Reader::Pg(_) => {
            format!("UPDATE events SET data = jsonb_set(data, '{{{field}}}', '{value}') WHERE id = '{id}'")
        }
    };
    reader.exec(&sql).await;
}

async fn impossible_dates_read_as_null(db: TestDb) {
    let sim = start_sim(sim_config(1000)).await;
    let mut s = sink::open(db.spec()).await.unwrap();
    let events = [catalog::find("events").unwrap()];
    let r = engine::run(&api_client(&sim, 0.0), s.as_mut(), &events, &EngineOptions::default(), &SystemClock, &Silent)
        .await
        .unwrap();
    assert!(r.ok());
    let reader = db.reader().await;
    set_field(&reader, "1", "start_date", "\"2023-02-30\"").await;
    set_field(&reader, "1", "end_date", "{\"y\": 2023, \"m\": 4, \"d\": 31}").await;
    set_field(&reader, "1", "date_modified", "\"2023-02-30T10:00:00Z\"").await;
    set_field(&reader, "2", "end_date", "{\"y\": 2024, \"m\": 2, \"d\": 29}").await;
    let nulls = "SELECT count(*) FROM v_events WHERE id = '1' \
                 AND start_date IS NULL AND end_date IS NULL AND date_modified IS NULL";
    assert_eq!(reader.count(nulls).await, 1, "impossible dates are NULL");
    let leap = "SELECT count(*) FROM v_events WHERE id = '2' AND end_date IS NOT NULL";
    assert_eq!(reader.count(leap).await, 1, "29 February 2024 is a date");
    let all = reader.count("SELECT count(*) FROM v_events WHERE start_date IS NOT NULL").await;
    assert_eq!(all as usize, sim.live_ids("events").len() - 1, "the query runs over every row");
    sim.shutdown().await;
}

// Every behaviour above, as one test per backend: `sqlite::<name>` and `postgres::<name>`.
skysync_tests::both_backends!(
    sqlite = TestDb::sqlite("skysync.db"),
    postgres = TestDb::postgres();
    impossible_dates_read_as_null,
);
