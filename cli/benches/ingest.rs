//! Ingest speed: pages of constituent JSON fed straight into a sink, no HTTP.
//!
//! `cargo bench -p skysync-cli --bench ingest` (release build). Each page goes the engine's way
//! from a response body to the database: core's `parse_keyed_page` (envelope, records and their
//! keys in one pass), the records moved out as sink rows, and one `commit_page` (rows and bookmark
//! in one transaction). Pages are generated before they are timed; only the ingest is on the
//! clock, in wall time and in this process's CPU time (which a busy machine moves much less).
//!
//! Knobs (environment): `SKYSYNC_BENCH_RECORDS` (default 100000), `SKYSYNC_BENCH_PAGE_SIZE`
//! (default 5000, Blackbaud's maximum), `SKYSYNC_BENCH_DB` (`sqlite`, default, or a
//! `postgres://` URL), `SKYSYNC_BENCH_PASSES` (default 1: every record is new; a second pass
//! sends the same records again, so every row is an update of an existing one). Prints one JSON
//! line per pass: records, seconds, records per second, CPU seconds and the peak RSS of this
//! process (`VmHWM`), which must not grow with the number of records. With PostgreSQL the
//! server's CPU time is not in `cpu_seconds`.

mod common;

use std::fmt::Write as _;

use skysync_cli::sink::{self, Row, SinkSpec, Target};
use skysync_core::catalog;
use skysync_core::host::{Clock, SystemClock};
use skysync_core::http::HttpResponse;
use skysync_core::sync::page::{into_records, parse_keyed_page};

use common::{cpu_seconds, env_u64, vm_hwm_kib};

const FIRST: &[&str] = &["Mark", "Sarah", "James", "Linda", "Robert", "Maria", "David", "Susan", "Wei", "Aisha"];
const LAST: &[&str] = &["Adamson", "Brown", "Chen", "Diaz", "Evans", "O'Brien", "Patel", "Quinn", "Smith", "Young"];
const CITIES: &[(&str, &str, &str)] =
    &[("Charleston", "SC", "29401"), ("Austin", "TX", "78701"), ("Portland", "OR", "97201"), ("Boston", "MA", "02108")];

/// One constituent in the shape of SKY's list (about 900 bytes, like Blackbaud's).
fn constituent(out: &mut String, id: u64) {
    let first = FIRST[(id % 10) as usize];
    let last = LAST[(id / 10 % 10) as usize];
    let (city, state, zip) = CITIES[(id % 4) as usize];
    let street_no = 1 + id % 9000;
    let mail = last.to_ascii_lowercase().replace('\'', "");
    let (sec, frac) = (id % 60, id % 10_000_000);
    let _ = write!(
        out,
        r#"{{"id":"{id}","type":"Individual","lookup_id":"{lookup}","name":"Mr. {first} {last}","title":"Mr.","first":"{first}","last":"{last}","gender":"Male","birthdate":{{"d":12,"m":4,"y":1968}},"address":{{"id":"{id}","constituent_id":"{id}","address_lines":"{street_no} Oak St","city":"{city}","state":"{state}","postal_code":"{zip}","country":"United States","formatted_address":"{street_no} Oak St\r\n{city}, {state} {zip}","preferred":true,"inactive":false}},"email":{{"id":"{id}","address":"{first_l}.{mail}@example.org","type":"Email","primary":true,"inactive":false,"do_not_email":false}},"phone":{{"id":"{id}","number":"(843) 555-{phone:04}","type":"Home","primary":true,"inactive":false,"do_not_call":false}},"gives_anonymously":false,"fundraiser_status":"None","deceased":false,"inactive":false,"date_added":"2016-06-21T02:47:{sec:02}.{frac:07}+00:00","date_modified":"2024-03-05T11:12:{sec:02}.{frac:07}+00:00"}}"#,
        lookup = 1000 + id,
        first_l = first.to_ascii_lowercase(),
        phone = id % 10_000,
    );
}

/// A list page: records `from..to`, the list's count and a `next_link`, as Blackbaud sends them.
fn page_body(from: u64, to: u64, total: u64) -> Vec<u8> {
    let mut out = String::with_capacity(((to - from) as usize) * 1000 + 256);
    let _ = write!(out, r#"{{"count":{total},"value":["#);
    for id in from..to {
        if id > from {
            out.push(',');
        }
        constituent(&mut out, id + 1);
    }
    let _ = write!(
        out,
        r#"],"next_link":"https://api.sky.blackbaud.com/constituent/v1/constituents?limit=5000&sort_token=tok{to}"}}"#
    );
    out.into_bytes()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` probing: nothing to list.
    }
    let records = env_u64("SKYSYNC_BENCH_RECORDS", 100_000);
    let page_size = env_u64("SKYSYNC_BENCH_PAGE_SIZE", 5000).max(1);
    let passes = env_u64("SKYSYNC_BENCH_PASSES", 1).max(1);
    let dir = tempfile::tempdir().expect("a temp dir");
    let (db, spec) = match std::env::var("SKYSYNC_BENCH_DB") {
        Ok(url) if url.starts_with("postgres") => ("postgresql", SinkSpec::postgres(url)),
        _ => ("sqlite", SinkSpec::Sqlite(dir.path().join("bench.db"))),
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let entity = catalog::find("constituents").expect("constituents are in the catalog");
    let url: url::Url = "https://api.sky.blackbaud.com/constituent/v1/constituents?limit=5000".parse().unwrap();
    let mut sink = rt.block_on(async {
        let mut sink = sink::open(&spec).await.expect("opening the sink");
        sink.prepare(&[entity]).await.expect("preparing the sink");
        sink
    });
    for pass in 1..=passes {
        let (spent, cpu, bytes) = rt.block_on(ingest(&mut *sink, entity, &url, records, page_size));
        report(db, records, page_size, (passes > 1).then_some(pass), spent, cpu, bytes);
    }
}

/// Feeds `records` records, `page_size` a page, into `sink`: (wall seconds, CPU seconds, JSON
/// bytes), counting only the ingest (not the page generation).
async fn ingest(
    sink: &mut dyn sink::Sink,
    entity: &'static catalog::Entity,
    url: &url::Url,
    records: u64,
    page_size: u64,
) -> (f64, f64, u64) {
    let (mut spent, mut cpu, mut bytes) = (0.0f64, 0.0f64, 0u64);
    let mut from = 0;
    while from < records {
        let to = (from + page_size).min(records);
        let body = page_body(from, to, records);
        bytes += body.len() as u64;
        let response = HttpResponse {
            status: 200,
            headers: vec![("content-type".into(), "application/json; charset=utf-8".into())],
            body,
        };
        let (started, cpu_started) = (SystemClock.now(), cpu_seconds());
        let (mut page, keys) = parse_keyed_page(url, &response, entity.key).expect("a list page").expect("record keys");
        drop(response);
        let rows: Vec<Row> = into_records(&mut page, keys)
            .into_iter()
            .map(|r| Row { id: r.id, date_modified: r.date_modified, data: r.data })
            .collect();
        let bookmark = page.next_link.clone().unwrap_or_default();
        sink.commit_page(entity.name, Target::Live, &rows, &bookmark, SystemClock.now())
            .await
            .expect("committing a page");
        spent += (SystemClock.now() - started).as_seconds_f64();
        cpu += cpu_seconds() - cpu_started;
        from = to;
    }
    (spent, cpu, bytes)
}

/// Prints one pass's JSON line.
fn report(db: &str, records: u64, page_size: u64, pass: Option<u64>, seconds: f64, cpu: f64, bytes: u64) {
    let mut line = serde_json::json!({
            "db": db,
            "records": records,
            "page_size": page_size,
            "json_mib": (bytes as f64 / 1048576.0 * 10.0).round() / 10.0,
            "seconds": (seconds * 1000.0).round() / 1000.0,
            "records_per_s": (records as f64 / seconds).round(),
            "cpu_seconds": (cpu * 100.0).round() / 100.0,
            "records_per_cpu_s": (records as f64 / cpu.max(0.01)).round(),
            "peak_rss_mib": (vm_hwm_kib() as f64 / 1024.0 * 10.0).round() / 10.0,
    });
    if let Some(pass) = pass {
        line["pass"] = pass.into();
    }
    println!("{line}");
}
