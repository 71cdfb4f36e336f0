//! A SKY API simulator: a real HTTP server on `127.0.0.1` that behaves like Blackbaud's OAuth 2.0
//! endpoints and list APIs, so tests, `skysync demo` and users' scripts run without Blackbaud.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use skysync_cli::sim::{Fault, SimConfig, Simulator};
//! let sim = Simulator::start(SimConfig { records: 100, ..SimConfig::default() }).await?;
//! sim.fail_next_api(3, Fault::TooManyRequests { retry_after_secs: 1 });
//! let changed = sim.modify("gifts", 5);
//! # let _ = changed; Ok(()) }
//! ```
//!
//! # Endpoints
//! - `GET /oauth/authorize` (also the legacy `/authorization`): validates `client_id` and
//!   `redirect_uri` (400 HTML page, never a redirect, when either is wrong; the redirect URI must
//!   equal a registered one exactly, as Blackbaud requires: case, trailing slash, port), records
//!   the PKCE `code_challenge` (`S256` only) and consents at once: `302` to
//!   `redirect_uri?code=…&state=…`, or `error=access_denied` when consent is denied.
//! - `POST /token`: `authorization_code` and `refresh_token` grants, HTTP Basic (read as
//!   Blackbaud does: the secret as is, no form-decoding) or body client authentication,
//!   `preserve_refresh_token`, RFC 6749 JSON errors.
//! - Every [`skysync_core::catalog::CATALOG`] entity at its `path` (`GET`), with
//!   `Bb-Api-Subscription-Key` and bearer checks, rate limit (429), daily quota (403), `limit`,
//!   `offset`, `last_modified`, `sort_token`, `fields`, `include_inactive`, `include_deceased`.
//!   `date_added` and `sort` are accepted but do not filter or sort (only `sort` + `sort_token` is
//!   rejected, as Blackbaud does).
//! - `OPTIONS` preflight and `Access-Control-Allow-Origin: *` on `/token` and the API.
//!
//! # Lists and paging: where the simulator differs from Blackbaud's documentation
//! Knobs are [`SimConfig`] fields (most also [`SimHandle`] setters); defaults take the less
//! convenient reading where Blackbaud's documentation is silent.
//! - **`next_link` filters** (knob `next_link_keeps_filters`, default off): links carry `limit`,
//!   `last_modified`/`date_added` and the cursor only, like Blackbaud's documented example; the
//!   caller's `include_inactive`, `include_deceased`, `fields` and other filters are dropped.
//!   Blackbaud does not say whether its links keep them. With the knob on, every parameter but
//!   `offset`/`sort_token`/`continuation_token` is repeated.
//! - **Actions and `continuation_token`** (knob `actions_paging`, default `sort_token` like every
//!   other list): Blackbaud documents the `continuation_token` query parameter for "new Action
//!   lists" (with `offset` deprecated) but no response field. `NextLinkContinuation` puts it in
//!   `next_link` (with `limit` only, unless filters are kept); `BodyContinuation` returns a
//!   top-level `continuation_token` and no `next_link`. In both, the token is handed out only
//!   after a full page (the last page has no cursor), it positions the request like a
//!   `sort_token` and `offset` is ignored.
//! - **`sort_token`**: base64 of eight bytes, like Blackbaud's example (`AAAAAAAC+I4=`), holding
//!   the record's change version; chains run in change order, so a record changed during a chain
//!   reappears at its end. Every page of a `last_modified`/`sort_token` request, empty ones
//!   included, carries a `next_link` (Blackbaud's advice: store the empty page's link).
//! - **List latency** (knobs `list_lag`, default none, and `list_lag_everywhere`): Blackbaud says
//!   lists marked `latency_30m` in the catalog return data "with an average latency of about 30
//!   minutes". With a lag, a record changed (or added) less than `list_lag` ago is not listed at all
//!   and not counted; Blackbaud would presumably still list its previous version, so a delete
//!   reconciliation during the lag sees it missing here. The lag is the same for every record (not
//!   an average), so a chain never passes a record that is still hidden.
//! - **`date_modified`** is the simulated edit time; Blackbaud's read-optimized lists may report
//!   the ETL update time instead.
//! - **`date_modified` ties** (knob `date_modified_ties`, default 0): initial records all have
//!   distinct times. Blackbaud's read store can give many records one timestamp (a display-name
//!   change bumps every record that shows the name); with the knob, that many records in the
//!   middle of each list share one `date_modified`.
//! - **Order of a `last_modified` list** (knob `unordered_from`, default ascending): Blackbaud
//!   documents that a `last_modified` list is "ascending by last-modified"; the simulator follows
//!   that by default. With the knob, the list keeps its stable `sort_token` order but from the
//!   given record on runs of 500 records come newest first, so `date_modified` goes down inside
//!   each run (the `last_modified` filter still applies to every row). Clients must not rely on
//!   the order then: skysync splits no scan whose pages are out of order and folds a split scan
//!   back into one chain when a chain meets a record older than one before it.
//! - **`count`** of a `last_modified` request counts from `last_modified`, whatever the
//!   `sort_token`; Blackbaud documents only that `limit` and `offset` do not affect it.
//! - **Filters**: only `limit`, `offset`, `last_modified`, `sort_token`, `continuation_token`
//!   (actions), `fields` (lists that accept it), `include_inactive` and `include_deceased` are
//!   applied; `date_added` and `sort` are accepted but ignored; `list_id`, `constituent_id[]`,
//!   `computed_status` and the other list-specific filters are ignored. About 5% of records with
//!   an `inactive` flag are inactive and 3% of constituents deceased, hidden unless asked for.
//! - **Events** (and other offset lists) have no `next_link`, as documented; plain offset requests
//!   to `next_link` lists get an `offset` link while rows remain, as in Blackbaud's examples.
//! - **General ledger** (`projects`, `journal_entry_batches`): offset lists with `last_modified`
//!   and no `next_link`, like events; records carry their integer key under the catalog's `key`
//!   (`project_id`, `batch_id`) and no `id`. Blackbaud's batch list also filters by `status` and
//!   `search_text`, ignored here; a deleted batch may be listed with `batch_status` `Deleted`
//!   rather than vanish (inferred from the status enum), here it disappears like other records.
//!   An older revision of Blackbaud's projects page said `last_modified` adds a `sort_token`
//!   `next_link`; the simulator follows the current page (none).
//! - **Event participants** (`/event/v1/events/{event_id}/participants`): an offset list per
//!   event with `last_modified` and no `next_link`, like events; `404` for an event that is not a
//!   live record. Participants are dealt round the initial events (participant `n` belongs to
//!   event `(n - 1) % events + 1`), so events added later have none; a deleted event's
//!   participants stay in the table but are unreachable, as its list is gone. Records carry no
//!   event id (Blackbaud's `ParticipantListEntry` has none). The default `sort` (last name) is
//!   not applied: rows come in id order. Two knobs for what Blackbaud does not say:
//!   `participant_changes_bump_parent` (default on): changing a participant also gives its event
//!   a new `date_modified`; off, the event list does not show the event as changed.
//!   `child_lists_ignore_last_modified` (default off): on, the participants list ignores
//!   `last_modified` and lists every participant of the event.
//! - **Deletes**: a deleted record disappears from every list, as Blackbaud's lists report no
//!   deletions.
//! - **Quota day** (knob `quota_day_ends_after`, `advance_clock` moves it): the daily quota
//!   refills at midnight UTC of the simulator's clock, or when the knob says. Blackbaud documents
//!   a daily window and a 403 whose `Retry-After` says when it renews, not the time of day it
//!   starts; skysync learns it from that 403 (`skysync_core::sync::quota`).
//! - **Errors**: 400/401/403/429 bodies use Blackbaud's `{"statusCode","message"}` shape with the
//!   simulator's own wording; random faults (`FaultRates`) add 500s, 429s, dropped connections,
//!   bodies cut off halfway (`Content-Length` unmet) and slow answers.
//!
//! # Data
//! `records` constituents; other entities scale from `n = records` (rounded up):
//! addresses, email_addresses, phones, constituent_custom_fields: `n`; gifts: `2n`;
//! gift_custom_fields: `n/2`; relationships, constituent_codes, notes,
//! actions: `n/2`; online_presences, educations: `n/4`; memberships, opportunities: `n/10`;
//! appeals, campaigns, funds: `max(10, n/50)`; packages: `max(10, n/25)`; events, projects:
//! `max(10, n/100)`; journal_entry_batches: `max(10, n/20)`
//! (all 0 when `records` is 0). About 5% of records of entities with an `include_inactive` filter
//! are inactive, about 3% of constituents are deceased. Ids are `"1"`, `"2"`, …; content is a pure
//! function of (seed, entity, id, revision); initial `date_modified` values lie in the three years
//! before the start day (00:00 UTC). A table is built on first use, so unused entities cost nothing.
//!
//! Record shapes follow Blackbaud's schemas (`ConstituentListItem`, `GiftRead`, `CustomFieldRead`,
//! …) for the fields the simulator renders; it renders fewer fields than Blackbaud. Gifts have
//! whole-number amounts split over one to three funds (the splits add up to the amount), and
//! sometimes a soft credit, a fundraiser and a receipt; every gift has one payment and one
//! acknowledgement. Custom fields have one of Blackbaud's eight types with a value of the
//! documented form (a Date value is `YYYY-MM-DDT00:00:00` without offset, as in Blackbaud's type
//! table; a FuzzyDate value `{"y","m","d"}` with the day or month missing in a third of them; a
//! Currency value a plain number, as in Blackbaud's example) and a `parent_id` naming an initial
//! constituent or gift. Blackbaud does not say whether Number, Currency and Boolean values are JSON
//! numbers and booleans or strings: JSON values by default (as its examples show), strings with
//! the knob `custom_field_values_as_strings`; the views read both.
//!
//! # How the OAuth side differs from Blackbaud
//! Everything below is either undocumented by Blackbaud (so the simulator picks one behaviour
//! and has a knob for the others) or simplified on purpose. Sources: `sky-api.md` in the project
//! docs, Blackbaud's sample repositories.
//! - **HTTP Basic**: Blackbaud's samples send `base64(client_id:client_secret)` with the secret
//!   unencoded, and its generated secrets contain `+`, `/` and `=`. The default
//!   [`DEFAULT_CLIENT_SECRET`] has all three and [`BasicDecoding::Raw`] reads the pair as is;
//!   [`BasicDecoding::FormDecoded`] is an RFC 6749 §2.3.1 server instead.
//! - **`preserve_refresh_token`** is not in Blackbaud's documentation. The default keeps the
//!   token's original expiry and reports the time left
//!   ([`PreservedRefreshExpiry::FixedReportsRemaining`]); the knob can instead report a full
//!   lifetime while enforcing the original expiry, or slide the expiry.
//! - **Rotation**: the old refresh token dies the moment a rotating refresh succeeds (Blackbaud
//!   does not document a grace period).
//! - **Redirect URIs** match exactly by default. `allow_any_loopback_redirect` (`skysync sim
//!   --any-loopback-redirect`) is a lenient mode Blackbaud does not have. The simulator does not
//!   enforce Blackbaud's other rules (https outside localhost, the 250-URI limit).
//! - **Consent** is instant: no sign-in, no consent or environment picker page; `environment_id`
//!   on the authorize URL is ignored, and every token carries the configured identity fields,
//!   `mode` `Full` and scope `rnxt.r rnxt.w`.
//! - **Codes** live 5 minutes and are single use, as documented; any exchange attempt burns one,
//!   even a failed one (undocumented). PKCE allows `S256` only.
//! - **Public clients** (`public_client`): a code exchange may authenticate with `client_id` and
//!   the PKCE verifier alone; a refresh always needs the secret.
//! - **Errors**: `invalid_client` comes with HTTP 401 and `WWW-Authenticate` (Blackbaud does not
//!   document the status); `/token` answers CORS requests unless `set_token_cors(false)`.
//! - **Tokens** are opaque random strings (Blackbaud's access tokens are JWTs); lifetimes default
//!   to Blackbaud's (60 minutes, 365 days) and are knobs (`access_token_ttl`,
//!   `refresh_token_ttl`, `skysync sim --access-token-ttl`).
//! - **Time** is the wall clock plus whatever `advance_clock` added, so tests can live through a
//!   year.
//!
//! # Control API
//! `GET /_sim/stats` returns [`SimStats`] as JSON. `POST /_sim/control` takes one JSON command
//! ([`control::Command`]) and answers `{"ok":true,...}` or `{"ok":false,"error":"..."}` (400):
//! ```text
//! {"op":"fail_next_token","n":1,"fault":{"kind":"drop"}}
//! {"op":"fail_next_api","n":3,"fault":{"kind":"too_many_requests","retry_after_secs":2}}
//! {"op":"drop_response_after_rotation","n":1}
//! {"op":"set_token_delay","before_ms":50,"after_ms":50}   (random waits around the commit)
//! {"op":"set_revoke_grant_on_replay","enabled":true}
//! {"op":"refresh_token_state","token":"…"}      → {"ok":true,"state":"live"|"rotated"|"revoked"|"unknown"}
//! {"op":"set_deny_consent","deny":true}
//! {"op":"set_quota","remaining":100}            (null = unlimited)
//! {"op":"set_rate_limit","per_sec":5}           (null = unlimited)
//! {"op":"set_fault_rates","rates":{"api_500":0.1,"api_429":0.0,"api_drop":0.0,"api_truncated":0.0,"api_slow":0.0,"slow_ms":500}}
//! {"op":"set_token_cors","enabled":false}
//! {"op":"set_basic_decoding","decoding":"form_decoded"}          (or "raw")
//! {"op":"set_preserved_refresh_expiry","mode":"fixed_reports_full_lifetime"}
//! {"op":"set_access_token_ttl","secs":300}
//! {"op":"set_next_link_keeps_filters","keep":true}
//! {"op":"set_actions_paging","paging":"body_continuation"}   (or "sort_token", "next_link_continuation")
//! {"op":"set_list_lag","secs":1800,"everywhere":false}       (secs null = no lag)
//! {"op":"release_held"}                         (lets every request held by a "hold" fault go on)
//! {"op":"register_redirect_uri","uri":"http://127.0.0.1:9000/callback"}
//! {"op":"advance_clock","secs":600}
//! {"op":"revoke_refresh_tokens"}
//! {"op":"modify","entity":"gifts","count":5}    → {"ok":true,"ids":["12",...]}
//! {"op":"add","entity":"gifts","count":5}       → ids
//! {"op":"delete","entity":"gifts","count":5}    → ids
//! {"op":"live_ids","entity":"gifts"}            → ids
//! {"op":"record","entity":"gifts","id":"12"}    → {"ok":true,"record":{...}|null}
//! {"op":"issue_tokens"}                         → {"ok":true,"tokens":{token response}}
//! {"op":"stats"} / {"op":"reset_stats"}
//! ```
//! Fault kinds: `{"kind":"status","code":503}`, `{"kind":"html","code":502}`, `{"kind":"drop"}`,
//! `{"kind":"slow","ms":1500}`, `{"kind":"oversized"}`,
//! `{"kind":"too_many_requests","retry_after_secs":1}`, `{"kind":"quota"}`,
//! `{"kind":"invalid_grant"}`, `{"kind":"wrong_content_type"}`, `{"kind":"truncated"}`,
//! `{"kind":"raw","status":200,"content_type":"application/json","body":"..."}` (any answer at all:
//! not something Blackbaud sends, but what a broken proxy or a hostile server could),
//! `{"kind":"redirect","status":302,"location":"http://elsewhere.example/x"}` (an empty answer
//! with this status and `Location`: Blackbaud documents no redirects on API or `/token` calls, so
//! this too stands for a broken proxy or a hostile server; clients must not follow it),
//! `{"kind":"hold"}` (a latch: the request waits, counted in `held` of the stats, until
//! `release_held`, then is answered normally; for tests that need a client busy mid-request).
//!
//! The list knobs are `skysync sim` flags too: `--next-link-keeps-filters`, `--actions-paging`,
//! `--list-lag SECS` (`--list-lag-everywhere`), `--quota-day-ends-after SECS`, `--public-client`,
//! `--refresh-token-ttl SECS`, `--basic-decoding`, `--preserved-refresh-expiry`, `--truncate-rate`.

mod api;
pub mod args;
pub mod control;
mod data;
mod faults;
pub mod grants;
mod net;
mod oauth;
mod render;
mod respond;
mod rng;
mod server;
mod state;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

use state::Shared;

/// Simulator settings. Knobs marked so can also be changed at run time through [`SimHandle`].
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Port on 127.0.0.1; 0 picks any free port.
    pub port: u16,
    /// The registered application id.
    pub client_id: String,
    /// The application secret. The default contains `+`, `/` and `=`, as Blackbaud's generated
    /// secrets do, so every test shows whether a client sends it the way Blackbaud reads it.
    pub client_secret: String,
    /// How `/token` reads `Authorization: Basic` credentials (knob).
    pub basic_decoding: BasicDecoding,
    /// Whether a code exchange may omit client authentication when it sends a PKCE verifier.
    pub public_client: bool,
    /// Registered redirect URIs, matched as exact strings (case, trailing slash, port), as
    /// Blackbaud does.
    pub redirect_uris: Vec<String>,
    /// Lenient matching: also accept any `http://127.0.0.1:<port>/…` or `http://localhost:<port>/…`
    /// redirect URI (off by default; Blackbaud does not do this).
    pub allow_any_loopback_redirect: bool,
    /// The `Bb-Api-Subscription-Key` the API accepts.
    pub subscription_key: String,
    /// Access token lifetime.
    pub access_token_ttl: Duration,
    /// Refresh token lifetime.
    pub refresh_token_ttl: Duration,
    /// What a refresh with `preserve_refresh_token=true` does to the token's expiry and what it
    /// reports (knob).
    pub preserved_refresh_expiry: PreservedRefreshExpiry,
    /// Number of constituents; other entities scale from it (see the module docs).
    pub records: u64,
    /// Seed for the data, the fault dice and record choice in `modify`/`delete`.
    pub seed: u64,
    /// Deny consent at `/oauth/authorize` (knob).
    pub deny_consent: bool,
    /// API calls allowed per rolling second; `None` = unlimited (knob).
    pub rate_limit_per_sec: Option<u32>,
    /// API calls allowed per (simulated) UTC day; `None` = unlimited (knob).
    pub daily_quota: Option<u64>,
    /// When the first quota day ends, in simulator time after start: `None` = at the next
    /// midnight UTC (as Blackbaud), `Some(d)` = `d` after start. Later days last 24 hours either
    /// way. Tests set it so that a real midnight during a run cannot refill their quota; only
    /// [`SimHandle::advance_clock`] moves them past it.
    pub quota_day_ends_after: Option<Duration>,
    /// Random API faults (knob).
    pub faults: FaultRates,
    /// Whether `next_link` repeats the caller's filters (`include_inactive`, `include_deceased`,
    /// `fields`, …). Off by default: Blackbaud's documented example link carries only `limit`,
    /// `last_modified` and `sort_token`, so the simulator assumes the worst (knob).
    pub next_link_keeps_filters: bool,
    /// How the actions list pages a `last_modified` request (knob; see [`ActionsPaging`]).
    pub actions_paging: ActionsPaging,
    /// List visibility lag: a record changed less than this long ago (sim time) is not listed yet,
    /// like Blackbaud's "average latency of about 30 minutes" (knob; `None` = none).
    pub list_lag: Option<Duration>,
    /// Apply [`Self::list_lag`] to every entity, not only those Blackbaud documents it for
    /// (`latency_30m` in the catalog) (knob).
    pub list_lag_everywhere: bool,
    /// Custom-field values of type Number, Currency and Boolean as JSON strings (`"500"`,
    /// `"true"`) instead of JSON numbers and booleans (knob). Blackbaud types `value` only as
    /// "object"; its examples show numbers.
    pub custom_field_values_as_strings: bool,
    /// This many initial records in the middle of every list share one `date_modified`, as when a
    /// display-name change bumps many records to one timestamp (knob; 0 = all distinct).
    pub date_modified_ties: u64,
    /// From this initial record (0-based, in list order) on, `last_modified` lists are not in
    /// ascending `date_modified` order: runs of 500 records come newest first (knob; `None` =
    /// ascending, as Blackbaud documents).
    pub unordered_from: Option<u64>,
    /// Whether changing a participant also changes its event (new `date_modified`), so the
    /// event list shows the event as changed (knob; default on). Blackbaud does not say.
    pub participant_changes_bump_parent: bool,
    /// Per-parent lists (participants) ignore `last_modified` and list every record (knob;
    /// default off: Blackbaud documents the filter).
    pub child_lists_ignore_last_modified: bool,
    /// Token response identity fields.
    pub environment_id: String,
    /// Token response identity fields.
    pub environment_name: String,
    /// Token response identity fields.
    pub legal_entity_id: String,
    /// Token response identity fields.
    pub legal_entity_name: String,
    /// Token response identity fields.
    pub user_id: String,
    /// Token response identity fields.
    pub email: String,
    /// Token response identity fields.
    pub given_name: String,
    /// Token response identity fields.
    pub family_name: String,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            port: 0,
            client_id: "sim-client-id".into(),
            client_secret: DEFAULT_CLIENT_SECRET.into(),
            basic_decoding: BasicDecoding::default(),
            public_client: false,
            redirect_uris: vec!["http://localhost:8321/callback".into(), "http://127.0.0.1:8321/callback".into()],
            allow_any_loopback_redirect: false,
            subscription_key: "sim-subscription-key".into(),
            access_token_ttl: Duration::from_secs(3600),
            refresh_token_ttl: Duration::from_secs(365 * 86_400),
            preserved_refresh_expiry: PreservedRefreshExpiry::default(),
            records: 1000,
            seed: 0x5EED_5C1E,
            deny_consent: false,
            rate_limit_per_sec: None,
            daily_quota: None,
            quota_day_ends_after: None,
            faults: FaultRates::default(),
            next_link_keeps_filters: false,
            actions_paging: ActionsPaging::default(),
            list_lag: None,
            list_lag_everywhere: false,
            custom_field_values_as_strings: false,
            date_modified_ties: 0,
            unordered_from: None,
            participant_changes_bump_parent: true,
            child_lists_ignore_last_modified: false,
            environment_id: "p-simEnvironment0000000001".into(),
            environment_name: "Simulated Sandbox Environment".into(),
            legal_entity_id: "p-simLegalEntity00000000001".into(),
            legal_entity_name: "Simulated Sandbox".into(),
            user_id: "5e1f0a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b".into(),
            email: "sim.user@example.org".into(),
            given_name: "Sam".into(),
            family_name: "Simulator".into(),
        }
    }
}

/// The simulator's default application secret: shaped like Blackbaud's (base64, so with `+`, `/`
/// and `=`), which breaks any client that form-encodes it into HTTP Basic.
pub const DEFAULT_CLIENT_SECRET: &str = "sim+Secret/0123456789abcdefABCDEF+xyz/Q==";

/// How `/token` decodes the `client_id:client_secret` pair of `Authorization: Basic`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum BasicDecoding {
    /// Base64 only, the pair taken as is: what Blackbaud's samples imply (they send
    /// `base64(id:secret)` with the secret unencoded, and its Node sample asks simple-oauth2 for
    /// `credentialsEncodingMode: 'loose'`).
    #[default]
    Raw,
    /// Base64, then each part form-decoded (`+` is a space, `%XX` a byte), as RFC 6749 §2.3.1
    /// describes.
    FormDecoded,
}

/// What a refresh with `preserve_refresh_token=true` does to the refresh token's expiry.
/// Blackbaud does not document it; a community write-up says the original expiry stays fixed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum PreservedRefreshExpiry {
    /// The expiry stays fixed and `refresh_token_expires_in` reports the time actually left.
    #[default]
    FixedReportsRemaining,
    /// The expiry stays fixed, but `refresh_token_expires_in` reports a full lifetime: a client
    /// that believes the response never sees the token's end coming.
    FixedReportsFullLifetime,
    /// Every preserving refresh gives the token a full lifetime again (and reports it).
    Sliding,
}

/// Probabilities (0.0..=1.0) of random faults on API calls, drawn from a seeded generator after
/// the queued faults of [`SimHandle::fail_next_api`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FaultRates {
    /// A 500 with a JSON body.
    pub api_500: f64,
    /// A 429 with `Retry-After: 1`.
    pub api_429: f64,
    /// The connection closes without a response.
    pub api_drop: f64,
    /// A 200 whose body stops halfway (the connection closes before `Content-Length` bytes).
    pub api_truncated: f64,
    /// The answer comes after [`Self::slow_ms`] milliseconds.
    pub api_slow: f64,
    /// Delay of a slow answer, in milliseconds.
    pub slow_ms: u64,
}

/// How the actions list pages a request with `last_modified` (or a cursor). Blackbaud documents
/// a `continuation_token` query parameter "for environments with access to new Action lists"
/// (`offset` is deprecated there), but not how a response hands it out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ActionsPaging {
    /// Like every other list: `next_link` with a `sort_token`.
    #[default]
    SortToken,
    /// `next_link` carries `continuation_token` (no `sort_token`, no `offset`); the last page has
    /// no `next_link`.
    NextLinkContinuation,
    /// No `next_link`; a top-level `continuation_token` field while more pages follow.
    BodyContinuation,
}

/// A failure to inject into one `/token` or API call. On the control API it is the same value
/// in JSON, tagged by `kind`: `{"kind":"status","code":503}`, `{"kind":"drop"}`, …
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// This status with a Blackbaud-like JSON body.
    Status {
        /// The status code.
        code: u16,
    },
    /// This status with an HTML error page (`text/html`).
    Html {
        /// The status code.
        code: u16,
    },
    /// Close the connection without any response.
    Drop,
    /// Wait this many milliseconds, then answer normally.
    Slow {
        /// The wait, in milliseconds.
        ms: u64,
    },
    /// 200 with a body over 8 MiB.
    Oversized,
    /// 429 with this `Retry-After`.
    TooManyRequests {
        /// Seconds in the `Retry-After` header (1 when left out on the control API).
        #[serde(default = "one_second")]
        retry_after_secs: u64,
    },
    /// 403 "Out of call volume quota".
    Quota,
    /// 400 `invalid_grant` (on `/token`; an API call gets a 401 instead).
    InvalidGrant,
    /// 200 with a JSON-looking body served as `text/plain`.
    WrongContentType,
    /// Exactly this answer: a hostile or broken server (control characters in messages, an
    /// `error` in a 200, truncated JSON, a `next_link` to another host, …).
    Raw {
        /// The status code.
        status: u16,
        /// The `Content-Type` header.
        content_type: String,
        /// The body, verbatim.
        body: String,
    },
    /// 200 whose body stops halfway: the connection closes before `Content-Length` bytes
    /// (API only; `/token` answers it like [`Fault::Drop`]).
    Truncated,
    /// An empty answer with this (3xx) status and this `Location` header: a redirect, possibly
    /// to another host, that a client holding credentials must not follow.
    Redirect {
        /// The status code (301, 302, 307, 308, …).
        status: u16,
        /// The `Location` header, verbatim.
        location: String,
    },
    /// A latch: the request waits (counted in [`SimStats::held`]) until
    /// [`SimHandle::release_held`] (control op `release_held`), then is answered normally. Tests
    /// use it to keep a client busy mid-request for exactly as long as they need, with no timing.
    Hold,
}

fn one_second() -> u64 {
    1
}

/// Counters, for assertions and `GET /_sim/stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SimStats {
    /// Every `POST /token`.
    pub token_calls: u64,
    /// Successful code exchanges.
    pub token_authorization_code: u64,
    /// Successful refreshes with `preserve_refresh_token=true`.
    pub token_refresh_preserve: u64,
    /// Successful rotating refreshes.
    pub token_refresh_rotate: u64,
    /// `/token` answers that were not a success (injected faults included).
    pub token_errors: u64,
    /// Every API request (preflights excluded).
    pub api_calls: u64,
    /// API requests answered 200 with data.
    pub api_ok: u64,
    /// 429 answers (rate limit and injected).
    pub rate_limited: u64,
    /// 403 quota answers (quota and injected).
    pub quota_rejections: u64,
    /// 5xx answers (injected).
    pub server_errors: u64,
    /// Connections dropped without a response (token and API).
    pub dropped: u64,
    /// API answers whose body was cut off halfway.
    pub truncated: u64,
    /// API answers delayed by a random slow fault.
    pub slowed: u64,
    /// API 401 answers (subscription key or bearer token).
    pub unauthorized: u64,
    /// Used codes and rotated-away refresh tokens presented again.
    pub replays: u64,
    /// Grants revoked because of a replay (revoke-on-replay knob).
    pub grants_revoked: u64,
    /// API requests per entity name.
    pub per_entity_calls: BTreeMap<String, u64>,
    /// Requests of per-parent lists, per `entity/parent_id` (e.g. `event_participants/7`).
    pub per_parent_calls: BTreeMap<String, u64>,
    /// Requests waiting at a [`Fault::Hold`] latch right now (not a running total).
    pub held: u64,
}

/// The PKCE `S256` challenge of `verifier`: `base64url(SHA-256(verifier))`, unpadded.
pub fn s256_challenge(verifier: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
}

/// Starts simulators.
#[derive(Debug)]
pub struct Simulator;

impl Simulator {
    /// Binds `127.0.0.1:cfg.port`, spawns the server on the current tokio runtime and returns at
    /// once. The server stops when the last [`SimHandle`] clone is dropped or on
    /// [`SimHandle::shutdown`].
    pub async fn start(cfg: SimConfig) -> anyhow::Result<SimHandle> {
        server::start(cfg).await
    }
}

/// A running simulator. Cheap to clone; every method takes effect at once.
#[derive(Debug, Clone)]
pub struct SimHandle {
    shared: Arc<Shared>,
    guard: Arc<server::StopGuard>,
}

impl SimHandle {
    /// `http://127.0.0.1:PORT/`.
    pub fn base_url(&self) -> Url {
        self.shared.base_url.clone()
    }

    /// `{base}oauth/authorize`.
    pub fn authorize_url(&self) -> Url {
        self.shared.base_url.join("oauth/authorize").expect("valid path")
    }

    /// `{base}token`.
    pub fn token_url(&self) -> Url {
        self.shared.base_url.join("token").expect("valid path")
    }

    /// The API base (SKY paths such as `/constituent/v1/constituents` hang off it).
    pub fn api_url(&self) -> Url {
        self.base_url()
    }

    /// The configuration, with the current values of the run-time knobs.
    pub fn config(&self) -> SimConfig {
        self.shared.lock().config()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> SimStats {
        self.shared.lock().stats.clone()
    }

    /// Zeroes the counters.
    pub fn reset_stats(&self) {
        self.shared.lock().stats = SimStats::default();
    }

    /// The next `n` `/token` calls fail with `fault`.
    pub fn fail_next_token(&self, n: u32, fault: Fault) {
        let mut s = self.shared.lock();
        s.token_faults.extend(std::iter::repeat_n(fault, n as usize));
    }

    /// The next `n` API calls (that pass the subscription key check) fail with `fault`.
    pub fn fail_next_api(&self, n: u32, fault: Fault) {
        let mut s = self.shared.lock();
        s.api_faults.extend(std::iter::repeat_n(fault, n as usize));
    }

    /// Lets every request waiting at a [`Fault::Hold`] latch go on (those queued later wait for
    /// the next release).
    pub fn release_held(&self) {
        self.shared.release_held();
    }

    /// The next `n` rotating refreshes rotate (the old refresh token dies), then drop the
    /// connection without a response.
    pub fn drop_response_after_rotation(&self, n: u32) {
        self.shared.lock().drop_after_rotation += n;
    }

    /// Slows `/token`: each call waits up to `before` before it is processed and up to `after`
    /// between its commit and the answer (uniformly random, from the seeded dice).
    pub fn set_token_delay(&self, before: Duration, after: Duration) {
        self.shared.lock().grants.delay =
            grants::TokenDelay { before_ms: before.as_millis() as u64, after_ms: after.as_millis() as u64 };
    }

    /// With `true`, a replayed authorization code or rotated-away refresh token revokes every
    /// token of its grant (RFC 6749 §10.4, §10.5).
    pub fn set_revoke_grant_on_replay(&self, enabled: bool) {
        self.shared.lock().grants.revoke_on_replay = enabled;
    }

    /// Whether `token` is live, rotated away (its holder lost a rotation), revoked or unknown.
    pub fn refresh_token_state(&self, token: &str) -> grants::RefreshTokenState {
        grants::state(&mut self.shared.lock(), token)
    }

    /// How `/token` decodes HTTP Basic credentials from now on.
    pub fn set_basic_decoding(&self, decoding: BasicDecoding) {
        self.shared.lock().cfg.basic_decoding = decoding;
    }

    /// What preserving refreshes do to the refresh token's expiry from now on.
    pub fn set_preserved_refresh_expiry(&self, mode: PreservedRefreshExpiry) {
        self.shared.lock().cfg.preserved_refresh_expiry = mode;
    }

    /// The lifetime of access tokens issued from now on.
    pub fn set_access_token_ttl(&self, ttl: Duration) {
        self.shared.lock().cfg.access_token_ttl = ttl;
    }

    /// Registers one more redirect URI (exact match), as a developer adds one to the application.
    pub fn register_redirect_uri(&self, uri: &str) {
        let mut s = self.shared.lock();
        if !s.cfg.redirect_uris.iter().any(|r| r == uri) {
            s.cfg.redirect_uris.push(uri.to_owned());
        }
    }

    /// Deny (or grant) consent at `/oauth/authorize`.
    pub fn set_deny_consent(&self, deny: bool) {
        self.shared.lock().cfg.deny_consent = deny;
    }

    /// Replaces the daily quota: `Some(n)` allows `n` more calls today (and `n` a day after),
    /// `None` is unlimited.
    pub fn set_quota(&self, remaining: Option<u64>) {
        let mut s = self.shared.lock();
        s.cfg.daily_quota = remaining;
        s.quota_used = 0;
    }

    /// Replaces the per-second rate limit.
    pub fn set_rate_limit(&self, per_sec: Option<u32>) {
        let mut s = self.shared.lock();
        s.cfg.rate_limit_per_sec = per_sec;
        s.rate_window.clear();
    }

    /// Replaces the random fault rates.
    pub fn set_fault_rates(&self, rates: FaultRates) {
        self.shared.lock().cfg.faults = rates;
    }

    /// Whether `next_link` repeats the caller's filters (see [`SimConfig::next_link_keeps_filters`]).
    pub fn set_next_link_keeps_filters(&self, keep: bool) {
        self.shared.lock().cfg.next_link_keeps_filters = keep;
    }

    /// How the actions list pages (see [`ActionsPaging`]).
    pub fn set_actions_paging(&self, paging: ActionsPaging) {
        self.shared.lock().cfg.actions_paging = paging;
    }

    /// Replaces the list visibility lag (see [`SimConfig::list_lag`]).
    pub fn set_list_lag(&self, lag: Option<Duration>, everywhere: bool) {
        let mut s = self.shared.lock();
        s.cfg.list_lag = lag;
        s.cfg.list_lag_everywhere = everywhere;
    }

    /// Knob: changing a participant changes its event too (see [`SimConfig::participant_changes_bump_parent`]).
    pub fn set_participant_changes_bump_parent(&self, bump: bool) {
        self.shared.lock().cfg.participant_changes_bump_parent = bump;
    }

    /// Knob: per-parent lists ignore `last_modified` (see [`SimConfig::child_lists_ignore_last_modified`]).
    pub fn set_child_lists_ignore_last_modified(&self, ignore: bool) {
        self.shared.lock().cfg.child_lists_ignore_last_modified = ignore;
    }

    /// With `false`, `/token` answers carry no CORS headers (a browser cannot read them).
    pub fn set_token_cors(&self, enabled: bool) {
        self.shared.lock().token_cors = enabled;
    }

    /// Moves the simulator's clock forward (codes, access and refresh tokens expire by it; records
    /// changed afterwards get later `date_modified` values).
    pub fn advance_clock(&self, d: Duration) {
        self.shared.lock().advance(d);
    }

    /// The simulator's current time.
    pub fn now(&self) -> time::OffsetDateTime {
        self.shared.lock().now()
    }

    /// An admin removed the app: every refresh token now gets `invalid_grant`.
    pub fn revoke_refresh_tokens(&self) {
        self.shared.lock().refresh.clear();
    }

    /// Changes `count` random live records of `entity` (new `date_modified` = sim now, new
    /// version, a visibly changed field) and returns their ids.
    ///
    /// # Panics
    /// If `entity` is not a catalog name (these knobs are for tests; the control API reports the
    /// error instead).
    pub fn modify(&self, entity: &str, count: u64) -> Vec<String> {
        self.shared.lock().modify(entity, count).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Changes `count` live records of per-parent `entity` filed under parent `parent_id` (and,
    /// with the knob `participant_changes_bump_parent`, the parent too); returns their ids.
    /// Panics like [`Self::modify`], and if `entity` has no parent.
    pub fn modify_under(&self, entity: &str, parent_id: &str, count: u64) -> Vec<String> {
        self.shared.lock().modify_under(entity, parent_id, count).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Ids of every live record of per-parent `entity` filed under `parent_id`. Panics like
    /// [`Self::modify_under`].
    pub fn live_ids_under(&self, entity: &str, parent_id: &str) -> Vec<String> {
        self.shared.lock().live_ids_under(entity, parent_id).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Creates `count` records of `entity` and returns their ids. Panics like [`Self::modify`].
    pub fn add(&self, entity: &str, count: u64) -> Vec<String> {
        self.shared.lock().add(entity, count).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Deletes `count` random live records of `entity` and returns their ids. Panics like
    /// [`Self::modify`].
    pub fn delete(&self, entity: &str, count: u64) -> Vec<String> {
        self.shared.lock().delete(entity, count).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Ids of every live record of `entity`, inactive and deceased ones included: what a full
    /// sync must end with. Panics like [`Self::modify`].
    pub fn live_ids(&self, entity: &str) -> Vec<String> {
        self.shared.lock().live_ids(entity).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The current JSON of one live record (`None` if unknown or deleted).
    pub fn record(&self, entity: &str, id: &str) -> Option<serde_json::Value> {
        self.shared.lock().record(entity, id).ok().flatten()
    }

    /// Mints a token pair as if a user had just consented (no `/token` call is counted): the same
    /// JSON a code exchange returns.
    pub fn issue_tokens(&self) -> serde_json::Value {
        self.shared.lock().issue_tokens(None)
    }

    /// When the simulator will refuse `refresh_token` (`None` for a token it does not know).
    pub fn refresh_token_expiry(&self, refresh_token: &str) -> Option<time::OffsetDateTime> {
        self.shared.lock().refresh.get(refresh_token).map(|g| g.expires)
    }

    /// Access tokens that are still valid now.
    pub fn live_access_tokens(&self) -> usize {
        self.shared.lock().live_access_tokens()
    }

    /// Refresh tokens that are still valid now.
    pub fn live_refresh_tokens(&self) -> usize {
        self.shared.lock().live_refresh_tokens()
    }

    /// Stops the server and waits (briefly) for it to finish.
    pub async fn shutdown(self) {
        self.guard.stop().await;
    }
}
