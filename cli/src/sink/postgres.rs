//! PostgreSQL sink: the same layout as SQLite, `jsonb` data and `timestamptz` times.
//!
//! TLS follows libpq: `sslmode` = `disable`, `prefer` (TLS when the server offers it, else plain),
//! `require` (TLS, certificate not checked), `verify-ca` (chain checked) or `verify-full` (chain
//! and host name checked), and `sslrootcert=/path/ca.pem` for a private CA (else the platform's
//! roots). See [`super::pg_tls`] for the details. The default, and where the password comes from,
//! are [`super::pg_auth`]'s: `verify-full` for a host that is not loopback, and never a password
//! over plain TCP unless `sslmode=disable` is written out.
//!
//! A page is one `INSERT … SELECT FROM unnest($1::text[], …)` statement (one round trip for 5000
//! rows) plus the bookmark update, in one transaction.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use skysync_core::catalog::Entity;
use skysync_core::sync::quota::QuotaLedger;
use time::OffsetDateTime;
use tokio_postgres::{Client, GenericClient};

use super::pg_auth;
use super::pg_tls::{self, SslMode, TlsSettings};
use super::spec::{check_pg_url, redact_url, scrub, url_secrets};
use super::{
    DeleteMode, EntityState, FullSwap, PageCommit, Row, RunOutcome, SCHEMA_VERSION, Sink, SinkError, Tables, Target,
    entity, format_ts, history, page_rows, parents, sql, tables,
};
use skysync_core::sync::ParentRow;

const COLUMNS: &str = "id text PRIMARY KEY, data jsonb NOT NULL, date_modified timestamptz, \
                       synced_at timestamptz NOT NULL, deleted_at timestamptz";

/// A PostgreSQL database reached over a `postgres://` URL.
pub struct PgSink {
    /// URL without password.
    target: String,
    /// The password (raw and decoded), scrubbed from every driver message.
    secrets: Vec<String>,
    client: Client,
    ensured: HashSet<&'static str>,
    /// `--history`: the run's time (see [`Sink::keep_history`]); `None` keeps no history.
    history: Option<OffsetDateTime>,
}

impl std::fmt::Debug for PgSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgSink").field("target", &self.target).finish_non_exhaustive()
    }
}

/// Driver error text with the server's detail and hint, password removed.
fn message(e: &tokio_postgres::Error, secrets: &[String]) -> String {
    let mut m = match e.as_db_error() {
        Some(db) => {
            let mut m = format!("{} ({})", db.message(), db.code().code());
            if let Some(d) = db.detail() {
                m.push_str(&format!("; detail: {d}"));
            }
            if let Some(h) = db.hint() {
                m.push_str(&format!("; hint: {h}"));
            }
            m
        }
        None => e.to_string(),
    };
    let mut src = std::error::Error::source(e);
    if e.as_db_error().is_none() {
        while let Some(s) = src {
            m.push_str(&format!(": {s}"));
            src = s.source();
        }
    }
    scrub(&m, secrets)
}

/// Maps driver errors of one action on one database to [`SinkError::Postgres`], password removed.
fn failer<'a>(
    target: &'a str,
    secrets: &'a [String],
    action: &'a str,
) -> impl Fn(tokio_postgres::Error) -> SinkError + Copy + 'a {
    move |e| SinkError::Postgres { target: target.to_owned(), action: action.to_owned(), message: message(&e, secrets) }
}

/// [`message`] plus what to do about the usual TLS mismatches.
fn connect_message(e: &tokio_postgres::Error, tls: &TlsSettings, secrets: &[String]) -> String {
    let mut m = message(e, secrets);
    // "no pg_hba.conf entry for host …, no encryption": the server only has `hostssl` lines for us.
    let plain_refused = |db: &tokio_postgres::error::DbError| {
        tls.mode == SslMode::Disable && db.code().code() == "28000" && db.message().contains("no encryption")
    };
    let hint = match e.as_db_error() {
        Some(db) if plain_refused(db) => Some(
            "the server only accepts TLS connections from here: drop sslmode=disable \
             (better: sslmode=verify-full with sslrootcert)"
                .to_owned(),
        ),
        Some(_) => None,
        None if m.contains("server does not support TLS") => Some(format!(
            "sslmode={} needs TLS but the server has it turned off (ssl = off): enable ssl on the server, \
             or use sslmode=prefer on a trusted network",
            match tls.mode {
                SslMode::VerifyCa => "verify-ca",
                SslMode::VerifyFull => "verify-full",
                _ => "require",
            }
        )),
        None => pg_tls::hint(e, tls),
    };
    if let Some(h) = hint {
        m.push_str("; hint: ");
        m.push_str(&h);
    }
    m
}

/// A connected client, the URL without password and the secrets to scrub from driver messages.
/// The sink and the PostgreSQL token store connect the same way (TLS, password sources).
pub(crate) struct Connected {
    pub(crate) client: Client,
    pub(crate) target: String,
    pub(crate) secrets: Vec<String>,
}

impl std::fmt::Debug for Connected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connected").field("target", &self.target).finish_non_exhaustive()
    }
}

/// Connects (10 s timeout unless the URL sets `connect_timeout`), with TLS as `sslmode` says.
pub(crate) async fn connect_client(url: &str, password_file: Option<&Path>) -> Result<Connected, SinkError> {
    let target = redact_url(url);
    let mut secrets = url_secrets(url);
    let parsed = check_pg_url(url)?;
    let mut tls = TlsSettings::from_url(&parsed).map_err(SinkError::InvalidSpec)?;
    let mut config: tokio_postgres::Config =
        pg_tls::strip_handled_params(url).parse().map_err(|e: tokio_postgres::Error| SinkError::Postgres {
            target: target.clone(),
            action: "parsing the URL".to_owned(),
            message: message(&e, &secrets),
        })?;
    let auth = pg_auth::apply(&parsed, &mut config, &mut tls, password_file).map_err(SinkError::InvalidSpec)?;
    secrets.extend(auth.password.clone());
    let fail = |action: &str, message: String| SinkError::Postgres {
        target: target.clone(),
        action: action.to_owned(),
        message: scrub(&message, &secrets),
    };
    config.ssl_mode(tls.mode.driver_mode());
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    let connector = tls.connector().map_err(|m| fail("setting up TLS", m))?;
    let (client, connection) = config
        .connect(connector)
        .await
        .map_err(|e| fail("connecting", auth.explain(connect_message(&e, &tls, &secrets))))?;
    let log_target = target.clone();
    let log_secrets = secrets.clone();
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(target = %log_target, error = %message(&e, &log_secrets), "PostgreSQL connection closed");
        }
    });
    Ok(Connected { client, target, secrets })
}

/// Driver error text with the server's detail and hint, `secrets` removed.
pub(crate) fn driver_message(e: &tokio_postgres::Error, secrets: &[String]) -> String {
    message(e, secrets)
}

impl PgSink {
    /// Connects (10 s timeout unless the URL sets `connect_timeout`), with TLS as `sslmode` says.
    /// `password_file` is the profile's (see [`super::pg_auth`]).
    pub async fn connect(url: &str, password_file: Option<&Path>) -> Result<Self, SinkError> {
        let Connected { client, target, secrets } = connect_client(url, password_file).await?;
        Ok(PgSink { target, secrets, client, ensured: HashSet::new(), history: None })
    }

    fn err<'a>(&'a self, action: &'a str) -> impl Fn(tokio_postgres::Error) -> SinkError + Copy + 'a {
        failer(&self.target, &self.secrets, action)
    }

    async fn ensure(&mut self, name: &str) -> Result<&'static Entity, SinkError> {
        let e = entity(name)?;
        if !self.ensured.contains(e.name) {
            self.prepare(&[e]).await?;
        }
        Ok(e)
    }
}

async fn ensure_state_row(c: &impl GenericClient, entity: &str) -> Result<(), tokio_postgres::Error> {
    c.execute("INSERT INTO sync_state (entity) VALUES ($1) ON CONFLICT (entity) DO NOTHING", &[&entity])
        .await
        .map(|_| ())
}

async fn table_exists(c: &impl GenericClient, quoted: &str) -> Result<bool, tokio_postgres::Error> {
    Ok(c.query_one("SELECT to_regclass($1::text) IS NOT NULL", &[&quoted]).await?.get(0))
}

fn micros(col: &str) -> String {
    format!("(extract(epoch FROM {col}) * 1000000)::int8")
}

fn state_query(filter: &str) -> String {
    format!(
        "SELECT entity, bookmark, staging_bookmark, reconcile_in_progress, {}, {}, {}, row_count, last_error
         FROM sync_state {filter} ORDER BY entity",
        micros("last_run_at"),
        micros("last_success_at"),
        micros("last_reconcile_at"),
    )
}

fn state_from_row(r: &tokio_postgres::Row) -> EntityState {
    let t = |i: usize| {
        r.get::<_, Option<i64>>(i).and_then(|us| OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000).ok())
    };
    EntityState {
        entity: r.get(0),
        bookmark: r.get(1),
        staging_bookmark: r.get(2),
        reconcile_in_progress: r.get(3),
        last_run_at: t(4),
        last_success_at: t(5),
        last_reconcile_at: t(6),
        row_count: r.get::<_, i64>(7).max(0) as u64,
        last_error: r.get(8),
    }
}

fn ts(t: OffsetDateTime) -> String {
    format_ts(t).unwrap_or_default()
}

#[async_trait::async_trait]
impl Sink for PgSink {
    fn describe(&self) -> String {
        format!("PostgreSQL {}", self.target)
    }

    async fn prepare(&mut self, entities: &[&'static Entity]) -> Result<(), SinkError> {
        for e in entities {
            entity(e.name)?;
        }
        let fail = failer(&self.target, &self.secrets, "creating tables");
        let tx = self.client.transaction().await.map_err(fail)?;
        // Serialize concurrent `prepare`s of several skysync processes (CREATE TABLE IF NOT EXISTS
        // is not race-free in PostgreSQL).
        tx.batch_execute("SELECT pg_advisory_xact_lock(7715533301)").await.map_err(failer(
            &self.target,
            &self.secrets,
            "taking the schema lock",
        ))?;
        let sink_view = PgSinkView { target: &self.target, secrets: &self.secrets };
        sink_view.init_meta(&tx).await?;
        for e in entities {
            let t = tables(e);
            let action = format!("creating table {}", e.name);
            tx.batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS {l} ({COLUMNS});
                 CREATE INDEX IF NOT EXISTS {i} ON {l} (date_modified);",
                l = t.live,
                i = t.index
            ))
            .await
            .map_err(failer(&self.target, &self.secrets, &action))?;
            if self.history.is_some() {
                tx.batch_execute(&history::create(e, "jsonb", "timestamptz")).await.map_err(failer(
                    &self.target,
                    &self.secrets,
                    &action,
                ))?;
            }
        }
        super::views::refresh_postgres(&tx).await.map_err(failer(&self.target, &self.secrets, "creating the views"))?;
        tx.commit().await.map_err(fail)?;
        self.ensured.extend(entities.iter().map(|e| e.name));
        Ok(())
    }

    async fn state(&mut self, name: &str) -> Result<Option<EntityState>, SinkError> {
        let e = self.ensure(name).await?;
        let row = self
            .client
            .query_opt(&state_query("WHERE entity = $1"), &[&e.name])
            .await
            .map_err(self.err("reading sync_state"))?;
        Ok(row.as_ref().map(state_from_row))
    }

    async fn states(&mut self) -> Result<Vec<EntityState>, SinkError> {
        let view = PgSinkView { target: &self.target, secrets: &self.secrets };
        view.init_meta(&self.client).await?;
        let rows = self.client.query(&state_query(""), &[]).await.map_err(self.err("reading sync_state"))?;
        Ok(rows.iter().map(state_from_row).collect())
    }

    async fn commit_page(
        &mut self,
        name: &str,
        target: Target,
        rows: &[Row],
        bookmark: &str,
        now: OffsetDateTime,
    ) -> Result<PageCommit, SinkError> {
        let e = self.ensure(name).await?;
        let rows = page_rows(rows);
        let ids: Vec<&str> = rows.iter().map(|r| r.id).collect();
        let data: Vec<&str> = rows.iter().map(|r| r.data).collect();
        let dms: Vec<Option<&str>> = rows.iter().map(|r| r.date_modified.as_deref()).collect();
        let synced_at = ts(now);
        let t = tables(e);
        let action = format!("writing a page of {name}");
        let fail = failer(&self.target, &self.secrets, &action);
        let tx = self.client.transaction().await.map_err(fail)?;
        if self.history.is_some() && target == Target::Live && !rows.is_empty() {
            history::pg_record_changed(&tx, e, &t, &ids, &data, &synced_at).await.map_err(fail)?;
        }
        let (table, column) = match target {
            Target::Live => (t.live, "bookmark"),
            Target::Staging => {
                if !table_exists(&tx, &t.staging).await.map_err(fail)? {
                    return Err(SinkError::NoFullResync { entity: e.name.to_owned() });
                }
                (t.staging, "staging_bookmark")
            }
        };
        let mut counts = PageCommit::default();
        if !rows.is_empty() {
            let r = tx
                .query_one(
                    &format!(
                        "WITH up AS (
                             INSERT INTO {table} AS t (id, data, date_modified, synced_at, deleted_at)
                             SELECT u.id, u.data::jsonb, u.dm::timestamptz, $4::text::timestamptz, NULL
                             FROM unnest($1::text[], $2::text[], $3::text[]) AS u(id, data, dm)
                             ON CONFLICT (id) DO UPDATE SET data = excluded.data,
                                 date_modified = excluded.date_modified,
                                 synced_at = excluded.synced_at, deleted_at = NULL
                             RETURNING (t.xmax = 0) AS inserted)
                         SELECT count(*) FILTER (WHERE inserted), count(*) FROM up"
                    ),
                    &[&ids, &data, &dms, &synced_at],
                )
                .await
                .map_err(fail)?;
            let (added, total): (i64, i64) = (r.get(0), r.get(1));
            counts.added = added.max(0) as u64;
            counts.changed = (total - added).max(0) as u64;
        }
        ensure_state_row(&tx, e.name).await.map_err(fail)?;
        tx.execute(&format!("UPDATE sync_state SET {column} = $1 WHERE entity = $2"), &[&bookmark, &e.name])
            .await
            .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        Ok(counts)
    }

    async fn begin_full(&mut self, name: &str) -> Result<Option<String>, SinkError> {
        let e = self.ensure(name).await?;
        let t = tables(e);
        let action = format!("starting a full resync of {name}");
        let fail = failer(&self.target, &self.secrets, &action);
        let tx = self.client.transaction().await.map_err(fail)?;
        ensure_state_row(&tx, e.name).await.map_err(fail)?;
        let resume: Option<String> = tx
            .query_one("SELECT staging_bookmark FROM sync_state WHERE entity = $1 FOR UPDATE", &[&e.name])
            .await
            .map_err(fail)?
            .get(0);
        if let Some(b) = resume
            && table_exists(&tx, &t.staging).await.map_err(fail)?
        {
            tx.commit().await.map_err(fail)?;
            return Ok(Some(b));
        }
        tx.batch_execute(&format!("DROP TABLE IF EXISTS {s}; CREATE TABLE {s} ({COLUMNS});", s = t.staging))
            .await
            .map_err(fail)?;
        tx.execute("UPDATE sync_state SET staging_bookmark = NULL WHERE entity = $1", &[&e.name])
            .await
            .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        Ok(None)
    }

    async fn finish_full(&mut self, name: &str, bookmark: &str) -> Result<FullSwap, SinkError> {
        let e = self.ensure(name).await?;
        let t = tables(e);
        let action = format!("swapping in the full resync of {name}");
        let fail = failer(&self.target, &self.secrets, &action);
        let tx = self.client.transaction().await.map_err(fail)?;
        if !table_exists(&tx, &t.staging).await.map_err(fail)? {
            return Err(SinkError::NoFullResync { entity: e.name.to_owned() });
        }
        let (added, changed, removed) = count_swap(&tx, &t).await.map_err(fail)?;
        if let Some(now) = self.history.map(ts) {
            tx.execute(&history::full_resync(e, &t, "$1::text::timestamptz"), &[&now]).await.map_err(fail)?;
        }
        tx.batch_execute(&sql::swap_in(&t)).await.map_err(fail)?;
        let row_count = record_swap(&tx, &t, e.name, bookmark).await.map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        Ok(sql::full_swap(added, changed, removed, row_count))
    }

    async fn begin_reconcile(&mut self, name: &str) -> Result<(), SinkError> {
        let e = self.ensure(name).await?;
        let t = tables(e);
        let action = format!("starting delete reconciliation of {name}");
        let fail = failer(&self.target, &self.secrets, &action);
        let tx = self.client.transaction().await.map_err(fail)?;
        tx.batch_execute(&format!("DROP TABLE IF EXISTS {s}; CREATE TABLE {s} (id text PRIMARY KEY);", s = t.seen))
            .await
            .map_err(fail)?;
        ensure_state_row(&tx, e.name).await.map_err(fail)?;
        tx.execute("UPDATE sync_state SET reconcile_in_progress = true WHERE entity = $1", &[&e.name])
            .await
            .map_err(fail)?;
        tx.commit().await.map_err(fail)
    }

    async fn add_seen_ids(&mut self, name: &str, ids: &[String]) -> Result<(), SinkError> {
        let e = self.ensure(name).await?;
        let t = tables(e);
        let action = format!("recording seen ids of {name}");
        let fail = failer(&self.target, &self.secrets, &action);
        if !table_exists(&self.client, &t.seen).await.map_err(fail)? {
            return Err(SinkError::NoReconcile { entity: e.name.to_owned() });
        }
        self.client
            .execute(
                &format!("INSERT INTO {} (id) SELECT DISTINCT unnest($1::text[]) ON CONFLICT (id) DO NOTHING", t.seen),
                &[&ids],
            )
            .await
            .map_err(fail)?;
        Ok(())
    }

    async fn finish_reconcile(&mut self, name: &str, mode: DeleteMode, now: OffsetDateTime) -> Result<u64, SinkError> {
        let e = self.ensure(name).await?;
        let t = tables(e);
        let action = format!("finishing delete reconciliation of {name}");
        let fail = failer(&self.target, &self.secrets, &action);
        let tx = self.client.transaction().await.map_err(fail)?;
        if !table_exists(&tx, &t.seen).await.map_err(fail)? {
            return Err(SinkError::NoReconcile { entity: e.name.to_owned() });
        }
        let stamp = ts(now);
        if self.history.is_some() {
            tx.execute(&history::deleted(e, &t, "$1::text::timestamptz"), &[&stamp]).await.map_err(fail)?;
        }
        let n = match mode {
            DeleteMode::Mark => {
                tx.execute(
                    &format!(
                        "UPDATE {} SET deleted_at = $1::text::timestamptz
                         WHERE deleted_at IS NULL AND {}",
                        t.live,
                        sql::unseen(&t)
                    ),
                    &[&stamp],
                )
                .await
            }
            DeleteMode::Remove => tx.execute(&sql::remove_unseen(&t), &[]).await,
        }
        .map_err(fail)?;
        tx.batch_execute(&format!("DROP TABLE {}", t.seen)).await.map_err(fail)?;
        ensure_state_row(&tx, e.name).await.map_err(fail)?;
        tx.execute(
            "UPDATE sync_state SET reconcile_in_progress = false,
                 last_reconcile_at = $1::text::timestamptz
             WHERE entity = $2",
            &[&stamp, &e.name],
        )
        .await
        .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        Ok(n)
    }

    async fn quota_ledger(&mut self, scope: &str) -> Result<Option<QuotaLedger>, SinkError> {
        super::quota::pg_read(&self.client, scope).await.map_err(self.err("reading skysync_quota"))
    }

    async fn save_quota_ledger(&mut self, scope: &str, ledger: &QuotaLedger) -> Result<(), SinkError> {
        super::quota::pg_write(&self.client, scope, ledger).await.map_err(self.err("writing skysync_quota"))
    }

    async fn finish_run(&mut self, name: &str, outcome: &RunOutcome, now: OffsetDateTime) -> Result<(), SinkError> {
        let e = self.ensure(name).await?;
        let t = tables(e);
        let stamp = ts(now);
        let (ok, error) = match outcome {
            RunOutcome::Success => (true, None),
            RunOutcome::Failed(m) => (false, Some(m.as_str())),
        };
        let action = format!("recording the end of the {name} run");
        let fail = failer(&self.target, &self.secrets, &action);
        let tx = self.client.transaction().await.map_err(fail)?;
        ensure_state_row(&tx, e.name).await.map_err(fail)?;
        tx.execute(
            &format!(
                "UPDATE sync_state SET last_run_at = $1::text::timestamptz,
                     last_success_at = CASE WHEN $2::bool THEN $1::text::timestamptz
                                            ELSE last_success_at END,
                     last_error = $3,
                     row_count = (SELECT count(*) FROM {} WHERE deleted_at IS NULL)
                 WHERE entity = $4",
                t.live
            ),
            &[&stamp, &ok, &error, &e.name],
        )
        .await
        .map_err(fail)?;
        tx.commit().await.map_err(fail)
    }

    async fn parent_rows(&mut self, parent: &str, child: &str) -> Result<Vec<ParentRow>, SinkError> {
        let (p, c) = (self.ensure(parent).await?, self.ensure(child).await?);
        let sql = parents::parent_rows_sql(p, c, parents::Dialect::Postgres);
        let rows = self.client.query(&sql, &[]).await.map_err(self.err("listing parent rows"))?;
        Ok(rows.iter().map(|r| ParentRow { id: r.get(0), written_at: r.get(1), child_high_water: r.get(2) }).collect())
    }

    async fn keep_history(&mut self, now: OffsetDateTime) -> Result<(), SinkError> {
        self.history = Some(now);
        self.ensured.clear();
        Ok(())
    }
}

/// The swap's first phase: (added, changed, removed) as readers will see them.
async fn count_swap(c: &impl GenericClient, t: &Tables) -> Result<(i64, i64, i64), tokio_postgres::Error> {
    let removed: i64 = c.query_one(&sql::count_removed(t), &[]).await?.get(0);
    let counts = c.query_one(&sql::count_added_changed(t), &[]).await?;
    Ok((counts.get(0), counts.get(1), removed))
}

/// The swap's last phase: stores the new bookmark and live row count; returns the count.
async fn record_swap(
    c: &impl GenericClient,
    t: &Tables,
    entity: &str,
    bookmark: &str,
) -> Result<i64, tokio_postgres::Error> {
    let count: i64 = c.query_one(&sql::count_live(t), &[]).await?.get(0);
    ensure_state_row(c, entity).await?;
    c.execute(
        "UPDATE sync_state SET bookmark = $1, staging_bookmark = NULL, row_count = $2
         WHERE entity = $3",
        &[&bookmark, &count, &entity],
    )
    .await?;
    Ok(count)
}

/// The parts of a [`PgSink`] error reporting needs, borrowable while a transaction holds the client.
struct PgSinkView<'a> {
    target: &'a str,
    secrets: &'a [String],
}

impl PgSinkView<'_> {
    async fn init_meta(&self, c: &impl GenericClient) -> Result<(), SinkError> {
        let fail = failer(self.target, self.secrets, "creating skysync_meta and sync_state");
        c.batch_execute(
            "CREATE TABLE IF NOT EXISTS skysync_meta (key text PRIMARY KEY, value text NOT NULL);
             CREATE TABLE IF NOT EXISTS sync_state (
                 entity text PRIMARY KEY,
                 bookmark text,
                 staging_bookmark text,
                 reconcile_in_progress boolean NOT NULL DEFAULT false,
                 last_run_at timestamptz,
                 last_success_at timestamptz,
                 last_reconcile_at timestamptz,
                 row_count bigint NOT NULL DEFAULT 0,
                 last_error text);
             INSERT INTO skysync_meta (key, value) VALUES ('schema_version', '1')
                 ON CONFLICT (key) DO NOTHING;",
        )
        .await
        .map_err(fail)?;
        let found: String =
            c.query_one("SELECT value FROM skysync_meta WHERE key = 'schema_version'", &[]).await.map_err(fail)?.get(0);
        let found: i64 = found.parse().unwrap_or(i64::MAX);
        if found > SCHEMA_VERSION {
            return Err(SinkError::SchemaTooNew {
                target: format!("PostgreSQL {}", self.target),
                found,
                supported: SCHEMA_VERSION,
            });
        }
        Ok(())
    }
}

/// Class id of skysync's advisory locks (the first half of the two-int key).
const SYNC_LOCK_CLASS: i32 = 0x5C5C;

impl PgSink {
    /// Tries the sync lock of this database and schema on this session (see
    /// [`super::run_lock`]): `Ok(Ok(()))` when taken (and `holder` recorded), `Ok(Err(holder))`
    /// when another session has it. The lock lasts until this session ends.
    pub(crate) async fn try_sync_lock(
        &self,
        holder: &super::run_lock::LockHolder,
    ) -> Result<Result<(), Option<super::run_lock::LockHolder>>, SinkError> {
        let key = "hashtext('skysync sync ' || current_database() || '.' || current_schema())";
        let row = self
            .client
            .query_one(&format!("SELECT pg_try_advisory_lock($1, {key})"), &[&SYNC_LOCK_CLASS])
            .await
            .map_err(self.err("taking the sync lock"))?;
        if !row.get::<_, bool>(0) {
            return Ok(Err(self.sync_lock_holder().await));
        }
        // Only the lock holder writes here, so concurrent CREATEs cannot race.
        self.client
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS skysync_sync_lock (
                     id int PRIMARY KEY, pid bigint NOT NULL, host text NOT NULL, since text NOT NULL)",
            )
            .await
            .map_err(self.err("recording the sync lock holder"))?;
        self.client
            .execute(
                "INSERT INTO skysync_sync_lock (id, pid, host, since) VALUES (1, $1, $2, $3)
                 ON CONFLICT (id) DO UPDATE SET pid = excluded.pid, host = excluded.host, since = excluded.since",
                &[&i64::from(holder.pid), &holder.host, &holder.since],
            )
            .await
            .map_err(self.err("recording the sync lock holder"))?;
        Ok(Ok(()))
    }

    /// The holder the lock table names, if it can be read.
    async fn sync_lock_holder(&self) -> Option<super::run_lock::LockHolder> {
        let row =
            self.client.query_opt("SELECT pid, host, since FROM skysync_sync_lock WHERE id = 1", &[]).await.ok()??;
        Some(super::run_lock::LockHolder {
            pid: u32::try_from(row.get::<_, i64>(0)).ok()?,
            host: row.get(1),
            since: row.get(2),
        })
    }
}
