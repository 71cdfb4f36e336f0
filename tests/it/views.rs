//! The reporting views (`v_*`) over a real sync from the simulator, on SQLite and on a real
//! PostgreSQL server, the README's sample queries on both, and `docs/VIEWS.md`.

use std::collections::BTreeMap;

use serde_json::Value;
use skysync_cli::sim::{SimConfig, SimHandle};
use skysync_cli::sink::{self, DeleteMode};
use skysync_cli::sync::engine::{self, EngineOptions, RunReport};
use skysync_cli::sync::progress::Silent;
use skysync_core::api::ApiClient;
use skysync_core::catalog::{self, CATALOG, Entity};
use skysync_core::host::testing::FixedClock;
use skysync_core::host::{Clock, SystemClock};
use skysync_core::sync::columns::{self, ddl, markdown};
use skysync_tests::cli::{Skysync, workspace_root};
use skysync_tests::db::{Reader, TestDb};
use skysync_tests::sky::{retrying_api_client, sim_config, start_sim};

fn client(sim: &SimHandle) -> ApiClient {
    retrying_api_client(sim, 0.0)
}

fn entities(names: &[&str]) -> Vec<&'static Entity> {
    names.iter().map(|n| catalog::find(n).unwrap()).collect()
}

/// One sync run of `names` into `db`, as a new process would (a fresh sink connection).
async fn sync(sim: &SimHandle, db: &TestDb, names: &[&str], o: EngineOptions) -> RunReport {
    sync_at(sim, db, names, o, &SystemClock).await
}

/// [`sync`] with the run's clock given (the times history records).
async fn sync_at(sim: &SimHandle, db: &TestDb, names: &[&str], o: EngineOptions, clock: &dyn Clock) -> RunReport {
    let mut sink = sink::open(db.spec()).await.unwrap();
    let o = EngineOptions { page_size: Some(500), ..o };
    let r = engine::run(&client(sim), sink.as_mut(), &entities(names), &o, clock, &Silent).await.unwrap();
    assert!(r.ok(), "run failed: stopped={:?} entities={:#?}", r.stopped, r.entities);
    r
}

#[derive(Clone, Copy, Debug)]
enum Db {
    Sqlite,
    Postgres,
}

fn fresh(db: Db) -> TestDb {
    match db {
        Db::Sqlite => TestDb::sqlite("skysync.db"),
        Db::Postgres => TestDb::postgres(),
    }
}

/// A query's column names and rows, values as JSON: SQLite integers and reals are numbers,
/// PostgreSQL values are what `row_to_json` makes of them (numeric → number, date → string).
#[derive(Debug)]
struct Answer {
    columns: Vec<String>,
    rows: Vec<Vec<Value>>,
}

impl Answer {
    /// Rows as maps by column name.
    fn records(&self) -> Vec<BTreeMap<&str, &Value>> {
        self.rows.iter().map(|r| self.columns.iter().map(String::as_str).zip(r.iter()).collect()).collect()
    }
}

async fn query(reader: &Reader, sql: &str) -> Answer {
    match reader {
        Reader::Sqlite(c) => {
            let mut st = c.prepare(sql).unwrap_or_else(|e| panic!("{e}: {sql}"));
            let columns: Vec<String> = st.column_names().map(str::to_owned).collect();
            let n = columns.len();
            let rows = st
                .query_map([], |r| {
                    (0..n)
                        .map(|i| {
                            Ok(match r.get_ref(i)? {
                                rusqlite::types::ValueRef::Null => Value::Null,
                                rusqlite::types::ValueRef::Integer(v) => Value::from(v),
                                rusqlite::types::ValueRef::Real(v) => Value::from(v),
                                rusqlite::types::ValueRef::Text(t) => {
                                    Value::from(String::from_utf8_lossy(t).into_owned())
                                }
                                rusqlite::types::ValueRef::Blob(_) => panic!("blob in a view"),
                            })
                        })
                        .collect::<rusqlite::Result<Vec<Value>>>()
                })
                .unwrap()
                .collect::<rusqlite::Result<Vec<_>>>()
                .unwrap();
            Answer { columns, rows }
        }
        Reader::Pg(c) => {
            let st = c.prepare(sql).await.unwrap_or_else(|e| panic!("{e}: {sql}"));
            let columns: Vec<String> = st.columns().iter().map(|c| c.name().to_owned()).collect();
            let wrapped = format!("SELECT row_to_json(q)::text FROM ({}) AS q", sql.trim().trim_end_matches(';'));
            let rows = c.query(&wrapped, &[]).await.unwrap_or_else(|e| panic!("{e}: {wrapped}"));
            let rows = rows
                .iter()
                .map(|r| {
                    let obj: serde_json::Map<String, Value> = serde_json::from_str(r.get::<_, &str>(0)).unwrap();
                    columns.iter().map(|c| obj.get(c).cloned().unwrap_or(Value::Null)).collect()
                })
                .collect();
            Answer { columns, rows }
        }
    }
}

/// A value as both databases should agree on it: numbers rounded to cents, booleans as 1/0.
fn normal(v: &Value) -> String {
    match v {
        Value::Number(n) => format!("{:.2}", n.as_f64().unwrap()),
        Value::Bool(b) => format!("{}.00", u8::from(*b)),
        Value::Null => "NULL".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A boolean column's value: PostgreSQL `boolean`, SQLite 1/0.
fn truth(v: &Value) -> Option<bool> {
    v.as_bool().or_else(|| v.as_i64().map(|i| i != 0))
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn text(v: &Value) -> Option<&str> {
    v.as_str()
}

/// The source JSON of every row of an entity's table, by id.
async fn source(reader: &Reader, entity: &str) -> BTreeMap<String, Value> {
    reader.rows(entity).await.into_iter().map(|(id, data, _)| (id, data)).collect()
}

async fn view_names(reader: &Reader) -> Vec<String> {
    let sql = match reader {
        Reader::Sqlite(_) => "SELECT name FROM sqlite_master WHERE type = 'view' ORDER BY name",
        Reader::Pg(_) => "SELECT viewname::text AS name FROM pg_views WHERE schemaname = current_schema() ORDER BY 1",
    };
    query(reader, sql).await.rows.into_iter().map(|r| r[0].as_str().unwrap().to_owned()).collect()
}

/// Every view answers after a sync of every catalog entity: its columns are the documented ones,
/// in order, and a record view has one row per stored record, with the stored ids.
async fn every_view_answers_after_a_sync(db: Db) {
    let sim = start_sim(sim_config(150)).await;
    let fx = fresh(db);
    let names: Vec<&str> = CATALOG.iter().map(|e| e.name).collect();
    sync(&sim, &fx, &names, EngineOptions::default()).await;
    let reader = fx.reader().await;
    for spec in columns::all() {
        let a = query(&reader, &format!("SELECT * FROM {}", spec.name)).await;
        assert_eq!(a.columns, ddl::column_names(spec), "{}: columns", spec.name);
        assert!(!a.rows.is_empty(), "{}: no rows", spec.name);
        if spec.each.is_none() {
            let mut ids: Vec<String> = a.rows.iter().map(|r| r[0].as_str().unwrap().to_owned()).collect();
            ids.sort();
            let mut stored = reader.ids(spec.entity).await;
            stored.sort();
            assert_eq!(ids, stored, "{}: one row per stored record", spec.name);
        }
    }
    // Typed, not text: amounts are numbers, booleans 1/0 or true/false, dates ISO.
    let g = query(&reader, "SELECT amount, is_anonymous, date FROM v_gifts WHERE id = '1'").await;
    assert!(g.rows[0][0].is_number(), "{:?}", g.rows);
    assert!(matches!(&g.rows[0][1], Value::Bool(_)) || g.rows[0][1].is_i64(), "{:?}", g.rows);
    assert_eq!(g.rows[0][2].as_str().unwrap().len(), 10, "{:?}", g.rows);
}

/// The splits of each gift add up to its amount; they carry fund, campaign, appeal and package.
async fn gift_splits_add_up_to_gift_amounts(db: Db) {
    let sim = start_sim(sim_config(200)).await;
    let fx = fresh(db);
    sync(&sim, &fx, &["gifts"], EngineOptions::default()).await;
    let reader = fx.reader().await;
    let gifts = source(&reader, "gifts").await;
    let v = query(&reader, "SELECT id, amount, constituent_id FROM v_gifts").await;
    assert_eq!(v.rows.len(), gifts.len());
    for r in v.records() {
        let data = &gifts[text(r["id"]).unwrap()];
        assert_eq!(num(r["amount"]), data["amount"]["value"].as_f64(), "{data}");
        assert_eq!(text(r["constituent_id"]), data["constituent_id"].as_str());
    }
    let off = query(
        &reader,
        "SELECT g.id, g.amount, s.total FROM v_gifts AS g
         LEFT JOIN (SELECT gift_id, sum(amount) AS total FROM v_gift_splits GROUP BY gift_id) AS s ON s.gift_id = g.id
         WHERE s.total IS NULL OR abs(g.amount - s.total) > 0.001",
    )
    .await;
    assert!(off.rows.is_empty(), "gifts whose splits do not add up: {:?}", off.rows);
    let splits = query(&reader, "SELECT * FROM v_gift_splits").await;
    let expected: usize = gifts.values().map(|g| g["gift_splits"].as_array().unwrap().len()).sum();
    assert_eq!(splits.rows.len(), expected);
    assert!(expected > gifts.len(), "some gifts have more than one split");
    for r in splits.records() {
        let gift = &gifts[text(r["gift_id"]).unwrap()];
        let i = r["position"].as_u64().unwrap() as usize - 1;
        let split = &gift["gift_splits"][i];
        for key in ["id", "fund_id", "campaign_id", "appeal_id", "package_id"] {
            assert_eq!(text(r[key]), split[key].as_str(), "{key} of {split}");
            assert!(text(r[key]).is_some(), "{key} of {split}");
        }
        assert_eq!(text(r["gift_date"]), Some(&gift["date"].as_str().unwrap()[..10]));
    }
    // Soft credits, fundraisers, receipts and payments: one row per element, amounts as numbers.
    for (view, array) in [
        ("v_gift_soft_credits", "soft_credits"),
        ("v_gift_fundraisers", "fundraisers"),
        ("v_gift_receipts", "receipts"),
        ("v_gift_payments", "payments"),
        ("v_gift_acknowledgements", "acknowledgements"),
    ] {
        let a = query(&reader, &format!("SELECT * FROM {view}")).await;
        let expected: usize = gifts.values().map(|g| g[array].as_array().map_or(0, Vec::len)).sum();
        assert_eq!(a.rows.len(), expected, "{view}");
        assert!(expected > 0, "{view}: the simulator gives some gifts {array}");
        for r in a.records() {
            let el = &gifts[text(r["gift_id"]).unwrap()][array][r["position"].as_u64().unwrap() as usize - 1];
            if let Some(amount) = r.get("amount") {
                assert_eq!(num(amount), el["amount"]["value"].as_f64(), "{view}: {el}");
            }
            if let Some(c) = r.get("constituent_id") {
                assert_eq!(text(c), el["constituent_id"].as_str(), "{view}: {el}");
            }
        }
    }
}

/// Each custom field's value sits in the typed column its `type` selects, and only there.
async fn custom_fields_fill_the_column_their_type_selects(db: Db) {
    custom_fields(db, false).await;
}

/// The same when numbers and booleans come as strings (simulator knob: Blackbaud types `value`
/// only as "object").
async fn custom_field_values_sent_as_strings(db: Db) {
    custom_fields(db, true).await;
}

async fn custom_fields(db: Db, as_strings: bool) {
    let sim = start_sim(SimConfig { custom_field_values_as_strings: as_strings, ..sim_config(200) }).await;
    let fx = fresh(db);
    sync(
        &sim,
        &fx,
        &["constituents", "gifts", "constituent_custom_fields", "gift_custom_fields"],
        EngineOptions::default(),
    )
    .await;
    let reader = fx.reader().await;
    for (view, entity, parent) in [
        ("v_constituent_custom_fields", "constituent_custom_fields", "constituents"),
        ("v_gift_custom_fields", "gift_custom_fields", "gifts"),
    ] {
        let src = source(&reader, entity).await;
        let parents = source(&reader, parent).await;
        let a = query(&reader, &format!("SELECT * FROM {view}")).await;
        let mut types = std::collections::BTreeSet::new();
        for r in a.records() {
            let data = &src[text(r["id"]).unwrap()];
            let ty = data["type"].as_str().unwrap();
            types.insert(ty.to_owned());
            assert_eq!(text(r["type"]), Some(ty));
            assert_eq!(text(r["category"]), data["category"].as_str());
            assert!(parents.contains_key(text(r["parent_id"]).unwrap()), "{view}: parent of {data} exists");
            let value = &data["value"];
            let filled: Vec<&str> = ["value_text", "value_number", "value_date", "value_fuzzy_year", "value_boolean"]
                .into_iter()
                .filter(|c| !r[c].is_null())
                .collect();
            match ty {
                "Text" | "CodeTableEntry" | "ConstituentId" => {
                    assert_eq!(text(r["value_text"]), value.as_str(), "{data}");
                    assert_eq!(filled, ["value_text"], "{data}");
                }
                "Number" | "Currency" => {
                    assert_eq!(value.is_string(), as_strings, "{data}");
                    let want = value.as_f64().or_else(|| value.as_str().and_then(|s| s.parse().ok()));
                    assert_eq!(num(r["value_number"]), want, "{data}");
                    assert_eq!(filled, ["value_number"], "{data}");
                }
                "Boolean" => {
                    assert_eq!(value.is_string(), as_strings, "{data}");
                    let want = value.as_bool().or_else(|| value.as_str().and_then(|s| s.parse().ok()));
                    assert_eq!(truth(r["value_boolean"]), want, "{data}");
                    assert_eq!(filled, ["value_boolean"], "{data}");
                }
                "Date" => {
                    assert_eq!(text(r["value_date"]), Some(&value.as_str().unwrap()[..10]), "{data}");
                    assert_eq!(filled, ["value_date"], "{data}");
                }
                "FuzzyDate" => {
                    assert_eq!(r["value_fuzzy_year"].as_i64(), value["y"].as_i64(), "{data}");
                    assert_eq!(r["value_fuzzy_month"].as_i64(), value["m"].as_i64(), "{data}");
                    assert_eq!(r["value_fuzzy_day"].as_i64(), value["d"].as_i64(), "{data}");
                    let complete = value.get("m").is_some() && value.get("d").is_some();
                    assert_eq!(r["value_date"].is_null(), !complete, "{data}");
                    assert_eq!(r["value_fuzzy"], r["value_date"], "{data}");
                }
                other => panic!("unexpected type {other}"),
            }
        }
        assert_eq!(types.len(), 8, "{view}: every Blackbaud custom-field type appears: {types:?}");
    }
}

/// Fuzzy dates: an ISO date when year, month and day are all there, plus the parts; the parts
/// alone when not.
async fn fuzzy_dates_become_iso_dates_and_parts(db: Db) {
    let sim = start_sim(sim_config(120)).await;
    let fx = fresh(db);
    sync(&sim, &fx, &["constituents", "constituent_custom_fields"], EngineOptions::default()).await;
    let reader = fx.reader().await;
    let src = source(&reader, "constituents").await;
    let a = query(&reader, "SELECT id, birthdate, birthdate_year, birthdate_month, birthdate_day FROM v_constituents")
        .await;
    let mut checked = 0;
    for r in a.records() {
        let b = &src[text(r["id"]).unwrap()]["birthdate"];
        if b.is_null() {
            assert!(r["birthdate"].is_null() && r["birthdate_year"].is_null());
            continue;
        }
        let (y, m, d) = (b["y"].as_i64().unwrap(), b["m"].as_i64().unwrap(), b["d"].as_i64().unwrap());
        assert_eq!(text(r["birthdate"]), Some(format!("{y:04}-{m:02}-{d:02}").as_str()));
        assert_eq!(
            (r["birthdate_year"].as_i64(), r["birthdate_month"].as_i64(), r["birthdate_day"].as_i64()),
            (Some(y), Some(m), Some(d))
        );
        checked += 1;
    }
    assert!(checked > 50, "{checked} birthdates checked");
    let partial = query(
        &reader,
        "SELECT value_fuzzy, value_fuzzy_year, value_fuzzy_month, value_fuzzy_day FROM v_constituent_custom_fields
         WHERE type = 'FuzzyDate' AND value_fuzzy_day IS NULL",
    )
    .await;
    assert!(!partial.rows.is_empty(), "the simulator sends incomplete fuzzy dates");
    for r in partial.records() {
        assert!(r["value_fuzzy"].is_null() && r["value_fuzzy_year"].is_i64(), "{r:?}");
    }
}

/// Records that delete reconciliation found gone stay in the views with `deleted_at`; so do
/// their child rows.
async fn deleted_records_show_deleted_at(db: Db) {
    let sim = start_sim(sim_config(100)).await;
    let fx = fresh(db);
    sync(&sim, &fx, &["gifts"], EngineOptions::default()).await;
    let mut gone = sim.delete("gifts", 6);
    gone.sort();
    sync(
        &sim,
        &fx,
        &["gifts"],
        EngineOptions { reconcile: true, deletes: DeleteMode::Mark, ..EngineOptions::default() },
    )
    .await;
    let reader = fx.reader().await;
    let a = query(&reader, "SELECT id FROM v_gifts WHERE deleted_at IS NOT NULL ORDER BY id").await;
    let mut marked: Vec<String> = a.rows.iter().map(|r| r[0].as_str().unwrap().to_owned()).collect();
    marked.sort();
    assert_eq!(marked, gone);
    let live = query(&reader, "SELECT count(*) FROM v_gifts WHERE deleted_at IS NULL").await;
    assert_eq!(num(&live.rows[0][0]), Some(sim.live_ids("gifts").len() as f64));
    let splits = query(&reader, "SELECT DISTINCT gift_id FROM v_gift_splits WHERE deleted_at IS NOT NULL").await;
    let mut split_gifts: Vec<String> = splits.rows.iter().map(|r| r[0].as_str().unwrap().to_owned()).collect();
    split_gifts.sort();
    assert_eq!(split_gifts, gone, "the splits of deleted gifts carry deleted_at");
}

/// Views appear with their entity's table, are re-created when missing, and a view someone
/// built on ours survives the next sync.
async fn views_follow_the_tables_and_survive_reruns(db: Db) {
    let sim = start_sim(sim_config(50)).await;
    let fx = fresh(db);
    sync(&sim, &fx, &["gifts"], EngineOptions::default()).await;
    let reader = fx.reader().await;
    let gift_views: Vec<String> = columns::of_entity("gifts").map(|v| v.name.to_owned()).collect();
    let mut want = gift_views.clone();
    want.sort();
    assert_eq!(view_names(&reader).await, want, "only the views over existing tables");
    reader.exec("DROP VIEW v_gift_receipts; CREATE VIEW my_report AS SELECT id, amount FROM v_gifts;").await;
    sync(&sim, &fx, &["gifts", "constituents"], EngineOptions::default()).await;
    let names = view_names(&reader).await;
    for v in gift_views.iter().map(String::as_str).chain(["v_constituents", "my_report"]) {
        assert!(names.iter().any(|n| n == v), "{v} in {names:?}");
    }
    let mine = query(&reader, "SELECT count(*) FROM my_report").await;
    assert_eq!(num(&mine.rows[0][0]), Some(100.0));
    // Another run with nothing new leaves the user's view alone (PostgreSQL would refuse to drop
    // v_gifts under it).
    sync(&sim, &fx, &["gifts", "constituents"], EngineOptions::default()).await;
    assert!(view_names(&reader).await.iter().any(|n| n == "my_report"));
}

// Every behaviour above, as one test per backend: `sqlite::<name>` and `postgres::<name>`.
skysync_tests::both_backends!(
    sqlite = Db::Sqlite,
    postgres = Db::Postgres;
    every_view_answers_after_a_sync,
    gift_splits_add_up_to_gift_amounts,
    custom_fields_fill_the_column_their_type_selects,
    custom_field_values_sent_as_strings,
    fuzzy_dates_become_iso_dates_and_parts,
    deleted_records_show_deleted_at,
    views_follow_the_tables_and_survive_reruns,
);

/// The README's sample queries: each ```sql block that starts with `-- sample: <name>`.
fn readme_samples() -> Vec<(String, String)> {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let mut out = Vec::new();
    for block in readme.split("```sql\n").skip(1) {
        let sql = block.split("```").next().unwrap();
        if let Some(rest) = sql.strip_prefix("-- sample: ") {
            let (name, _) = rest.split_once('\n').unwrap();
            out.push((name.trim().to_owned(), sql.to_owned()));
        }
    }
    out
}

/// The same data in SQLite and PostgreSQL gives the same answer to every README sample query.
#[tokio::test]
async fn readme_sample_queries_agree_on_both_databases() {
    let samples = readme_samples();
    let names: Vec<&str> = samples.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "giving_by_fund_and_year",
            "donors_with_a_custom_field",
            "soft_credit_totals",
            "lapsed_donors",
            "record_as_of_a_date"
        ]
    );
    skysync_tests::skip_in_fast_tier!("PostgreSQL");
    let sim = start_sim(sim_config(300)).await;
    let entities = ["constituents", "gifts", "funds", "constituent_custom_fields"];
    let (lite, pg) = (fresh(Db::Sqlite), fresh(Db::Postgres));
    // With `--history`: a first run in June 2025, a change, and a second run in August, so the
    // history sample finds the June version of the changed record as of 1 July.
    let history = EngineOptions { history: true, ..EngineOptions::default() };
    let june = FixedClock::new(time::macros::datetime!(2025-06-01 00:00 UTC));
    for db in [&lite, &pg] {
        sync_at(&sim, db, &entities, history.clone(), &june).await;
    }
    let changed = sim.modify("constituents", 1).remove(0);
    let august = FixedClock::new(time::macros::datetime!(2025-08-01 00:00 UTC));
    for db in [&lite, &pg] {
        sync_at(&sim, db, &entities, history.clone(), &august).await;
    }
    let (lite, pg) = (lite.reader().await, pg.reader().await);
    for (name, sql) in &samples {
        // The history sample asks about constituent 42: ask about the one that changed instead.
        let sql = &if name == "record_as_of_a_date" {
            assert!(sql.contains("'42'"), "{sql}");
            sql.replace("'42'", &format!("'{changed}'"))
        } else {
            sql.clone()
        };
        let answers = [query(&lite, sql).await, query(&pg, sql).await];
        let [a, b] = answers.map(|a| {
            let mut rows: Vec<Vec<String>> = a.rows.iter().map(|r| r.iter().map(normal).collect()).collect();
            rows.sort();
            (a.columns, rows)
        });
        assert_eq!(a.0, b.0, "{name}: column names");
        assert_eq!(a.1, b.1, "{name}: rows differ between SQLite and PostgreSQL");
        assert!(!a.1.is_empty(), "{name}: the sample answers something on the simulator's data");
    }
}

/// `docs/VIEWS.md` is what `skysync views --markdown` prints (regenerate it with
/// `SKYSYNC_UPDATE_DOCS=1 cargo test -p skysync-tests --test it views::`).
#[tokio::test]
async fn views_md_is_current() {
    let path = workspace_root().join("docs/VIEWS.md");
    let sk = Skysync::start().await;
    let run = sk.run(&["views", "--markdown"]).await;
    run.expect_code(0);
    assert_eq!(run.stdout, markdown::reference(columns::all()));
    if std::env::var_os("SKYSYNC_UPDATE_DOCS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &run.stdout).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(committed == run.stdout, "docs/VIEWS.md is stale: run `skysync views --markdown > docs/VIEWS.md`");
}

/// The issue's acceptance run, black-box: `skysync sync constituents gifts
/// constituent_custom_fields gift_custom_fields` leaves the custom fields and the views in the
/// profile's SQLite file, the gift splits adding up to the gift amounts.
#[tokio::test]
async fn sync_command_leaves_custom_fields_and_views_in_sqlite() {
    let sk = Skysync::with_sim(sim_config(80)).await;
    let tokens = sk.minted_tokens(|_| {});
    sk.seed(tokens).await;
    let run = sk.run(&["sync", "constituents", "gifts", "constituent_custom_fields", "gift_custom_fields"]).await;
    run.expect_code(0);
    let db = TestDb::at(sink::SinkSpec::Sqlite(sk.data_dir().join("skysync.db")));
    let reader = db.reader().await;
    for (view, table) in
        [("v_constituent_custom_fields", "constituent_custom_fields"), ("v_gift_custom_fields", "gift_custom_fields")]
    {
        let n = reader.count(&format!("SELECT count(*) FROM {view}")).await;
        assert!(n > 0 && n == reader.count(&format!("SELECT count(*) FROM {table}")).await, "{view}: {n}");
    }
    let off = reader
        .count(
            "SELECT count(*) FROM v_gifts AS g WHERE abs(g.amount - (SELECT sum(amount) FROM v_gift_splits AS s \
             WHERE s.gift_id = g.id)) > 0.001",
        )
        .await;
    assert_eq!(off, 0);
    assert_eq!(reader.count("SELECT count(*) FROM v_gifts").await, 160);
}

/// `skysync views` prints the SQL per database and per entity, and refuses unknown entities.
#[tokio::test]
async fn views_command_prints_the_sql() {
    let sk = Skysync::start().await;
    let run = sk.run(&["views", "--db", "postgres", "gifts"]).await;
    run.expect_code(0);
    assert!(run.stdout.contains("CREATE VIEW v_gift_splits AS") && run.stdout.contains("jsonb_array_elements"));
    assert!(!run.stdout.contains("v_constituents"));
    let run = sk.run(&["views"]).await;
    run.expect_code(0);
    for v in columns::all() {
        assert!(run.stdout.contains(&format!("CREATE VIEW {} AS", v.name)), "{}", v.name);
    }
    assert!(run.stdout.contains("json_each"));
    sk.run(&["views", "no_such_list"]).await.expect_code(2);
}
