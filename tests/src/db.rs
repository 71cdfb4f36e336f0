//! Test databases of either backend, and a reader that sees one as another process would: the
//! sink tests, the sync engine tests and the CLI's sync tests share them.

use serde_json::Value;
use skysync_cli::sink::SinkSpec;
use tempfile::TempDir;

use crate::deadline::Deadline;
use crate::pg::PgServer;

/// A database for one test: a SQLite file in a temp dir, or a fresh PostgreSQL database; both go
/// away with it.
#[derive(Debug)]
pub struct TestDb {
    spec: SinkSpec,
    _dir: TempDir,
    _pg: Option<PgServer>,
    _deadline: Deadline,
}

impl TestDb {
    /// A SQLite file at `relative` (which may name directories that do not exist yet) in a temp dir.
    pub fn sqlite(relative: &str) -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        TestDb { spec: SinkSpec::Sqlite(dir.path().join(relative)), _dir: dir, _pg: None, _deadline: Deadline::start() }
    }

    /// A fresh database on the shared PostgreSQL test server (see [`crate::pg`]).
    pub fn postgres() -> TestDb {
        let pg = PgServer::start().expect("PostgreSQL test server");
        let dir = tempfile::tempdir().expect("temp dir");
        TestDb { spec: SinkSpec::postgres(pg.url()), _dir: dir, _pg: Some(pg), _deadline: Deadline::start() }
    }

    /// An existing database (one the `skysync` binary wrote, say), not removed afterwards.
    pub fn at(spec: SinkSpec) -> TestDb {
        TestDb { spec, _dir: tempfile::tempdir().expect("temp dir"), _pg: None, _deadline: Deadline::start() }
    }

    /// The sink description.
    pub fn spec(&self) -> &SinkSpec {
        &self.spec
    }

    /// Whether this is PostgreSQL.
    pub fn is_pg(&self) -> bool {
        matches!(self.spec, SinkSpec::Postgres { .. })
    }

    /// A second, independent connection, as a reader of the database would have.
    pub async fn reader(&self) -> Reader {
        match &self.spec {
            SinkSpec::Sqlite(p) => Reader::Sqlite(rusqlite::Connection::open(p).expect("open SQLite")),
            SinkSpec::Postgres { url, .. } => {
                let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("connect");
                tokio::spawn(conn);
                Reader::Pg(client)
            }
            SinkSpec::Jsonl(_) => panic!("JSON lines have no reader connection"),
        }
    }
}

/// A connection of its own to a test database.
#[derive(Debug)]
pub enum Reader {
    /// SQLite.
    Sqlite(rusqlite::Connection),
    /// PostgreSQL.
    Pg(tokio_postgres::Client),
}

/// (id, data, deleted) ordered by id.
pub type Rows = Vec<(String, Value, bool)>;

impl Reader {
    /// Every row of `table`, deleted ones included, ordered by id.
    pub async fn rows(&self, table: &str) -> Rows {
        let sql = format!("SELECT id, data, deleted_at IS NOT NULL FROM \"{table}\" ORDER BY id");
        let json = |text: &str| serde_json::from_str::<Value>(text).expect("stored data is JSON");
        match self {
            Reader::Sqlite(c) => {
                let mut st = c.prepare(&sql).expect("prepare");
                st.query_map([], |r| Ok((r.get::<_, String>(0)?, json(&r.get::<_, String>(1)?), r.get(2)?)))
                    .expect("query")
                    .collect::<Result<_, _>>()
                    .expect("rows")
            }
            Reader::Pg(c) => {
                let sql = sql.replace("data,", "data::text,");
                let rows = c.query(&sql, &[]).await.expect("query");
                rows.iter().map(|r| (r.get(0), json(r.get::<_, &str>(1)), r.get(2))).collect()
            }
        }
    }

    /// The ids of [`Self::rows`].
    pub async fn ids(&self, table: &str) -> Vec<String> {
        self.rows(table).await.into_iter().map(|r| r.0).collect()
    }

    /// `date_modified` in UTC with microseconds, or None.
    pub async fn date_modified(&self, table: &str, id: &str) -> Option<String> {
        match self {
            Reader::Sqlite(c) => c
                .query_row(&format!("SELECT date_modified FROM \"{table}\" WHERE id = ?1"), [id], |r| r.get(0))
                .expect("query"),
            Reader::Pg(c) => c
                .query_one(
                    &format!(
                        "SELECT to_char(date_modified AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') \
                         FROM \"{table}\" WHERE id = $1"
                    ),
                    &[&id],
                )
                .await
                .expect("query")
                .get(0),
        }
    }

    /// The single integer `sql` returns.
    pub async fn count(&self, sql: &str) -> i64 {
        match self {
            Reader::Sqlite(c) => c.query_row(sql, [], |r| r.get(0)).expect("query"),
            Reader::Pg(c) => c.query_one(sql, &[]).await.expect("query").get(0),
        }
    }

    /// Runs `sql` (one or more statements).
    pub async fn exec(&self, sql: &str) {
        match self {
            Reader::Sqlite(c) => c.execute_batch(sql).expect("execute"),
            Reader::Pg(c) => c.batch_execute(sql).await.expect("execute"),
        }
    }
}
