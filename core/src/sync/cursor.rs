//! Where the next page of one list scan comes from, as a pure state machine.
//!
//! A [`Cursor`] says which URL to fetch next and, after each page, what [`Bookmark`] to store with
//! that page's rows (in the same database transaction). Entities with a `sort_token` follow
//! `next_link` until a page comes back empty; that page's `next_link` is where the next run
//! resumes (Blackbaud's recommended pattern). Entities without one (events) page by `offset`
//! with a `last_modified` filter that starts a configurable overlap before the previous run.
//!
//! Every link taken gets the first request's filters back ([`restore_filters`]). The actions list
//! documents a `continuation_token` query parameter for environments with the new Action lists. A
//! `next_link` that carries it is followed like any other; a page that carries a top-level
//! `continuation_token` instead of a `next_link` is followed by re-sending the request with that
//! token ([`with_continuation_token`]). A continuation token is not kept across runs: a finished
//! chain restarts from the newest change seen, minus the overlap.

use std::time::Duration;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use url::Url;

use super::bookmark::{BEGINNING_OF_TIME, Bookmark, newer, page_high_water, restart_point, rfc3339};
use super::catalog::{Entity, Incremental};
use super::filters::{filters_of, has_continuation_token, restore_filters, with_continuation_token};
use super::page::{Page, PageError, RecordKey};

/// How far before the previous run a scan that restarts from a time begins, by default: Blackbaud
/// documents lists lagging edits by "an average latency of about 30 minutes".
pub const DEFAULT_OVERLAP: Duration = Duration::from_secs(30 * 60);

/// Options for a cursor.
#[derive(Debug, Clone, Copy)]
pub struct CursorOptions {
    /// Page size; `None` uses the entity's maximum (5000 for most lists: fewest calls).
    pub page_size: Option<u32>,
    /// How far before the previous run an offset scan's `last_modified` starts, covering
    /// Blackbaud's ~30-minute list latency.
    pub overlap: Duration,
}

impl Default for CursorOptions {
    fn default() -> Self {
        Self { page_size: None, overlap: DEFAULT_OVERLAP }
    }
}

/// After a page: go on, or the entity is caught up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Fetch [`Cursor::request_url`] next.
    More,
    /// Nothing more this run.
    Done,
}

/// Plans the requests of one entity's sync.
#[derive(Debug, Clone)]
pub struct Cursor {
    entity: &'static Entity,
    /// The list's path: the entity's, or for a per-parent list the one parent's.
    path: String,
    base: Url,
    limit: u32,
    overlap: Duration,
    state: Bookmark,
    ids_only: bool,
    /// The non-cursor parameters of the chain's first request, restored on every link.
    filters: Vec<(String, String)>,
    counts: ScanCounts,
}

/// What the pages of one scan said about its size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanCounts {
    /// Records read.
    pub read: u64,
    /// The `count` of the first page that had one.
    pub first_count: Option<u64>,
    /// The `count` of the latest page that had one.
    pub last_count: Option<u64>,
}

impl Cursor {
    /// Continues from `bookmark` (or starts from the beginning without one).
    pub fn resume(
        entity: &'static Entity,
        base: &Url,
        bookmark: Option<Bookmark>,
        options: CursorOptions,
        now: OffsetDateTime,
    ) -> Self {
        let limit = options.page_size.unwrap_or(entity.max_limit).clamp(1, entity.max_limit);
        let state = match (entity.incremental, bookmark) {
            (Incremental::SortToken, Some(b @ Bookmark::Chain { .. })) => b,
            (_, Some(b @ Bookmark::Offset { .. })) => b,
            (Incremental::LastModifiedOffset, Some(Bookmark::Done { since, high_water })) => {
                Bookmark::Offset { since, offset: 0, started_at: rfc3339(now), high_water }
            }
            (Incremental::SortToken, other) => {
                // A first run, or a bookmark of another kind: start the chain from the last
                // change seen (minus the overlap), or from the beginning of time.
                let high_water = other.as_ref().and_then(|b| b.high_water().map(str::to_owned));
                let since = restart_point(high_water.as_deref(), options.overlap);
                let url = Self::list_url(entity, base, limit, &[("last_modified", since.as_str())]);
                Bookmark::Chain { next_link: url.to_string(), high_water }
            }
            (_, _) => Bookmark::Offset { since: None, offset: 0, started_at: rfc3339(now), high_water: None },
        };
        Self::starting(entity, base, limit, options.overlap, state, false)
    }

    /// A scan at `state`, before its first page.
    fn starting(
        entity: &'static Entity,
        base: &Url,
        limit: u32,
        overlap: Duration,
        state: Bookmark,
        ids_only: bool,
    ) -> Self {
        let fields: &[(&str, &str)] = if ids_only && entity.fields_id { &[("fields", "id")] } else { &[] };
        Self {
            entity,
            path: entity.path.to_owned(),
            base: base.clone(),
            limit,
            overlap,
            state,
            ids_only,
            // What the first request sends, and every later page must keep.
            filters: filters_of(&Self::list_url(entity, base, limit, fields)),
            counts: ScanCounts::default(),
        }
    }

    /// A scan of every current id, for delete reconciliation (`fields=id` where supported).
    ///
    /// Lists with a `sort_token` are scanned as a chain from the beginning of time: offset pages
    /// shift when records are deleted behind the scan, skipping live ids that would then be taken
    /// for deleted, while a chain keeps its order and moves changed records to its end.
    pub fn id_scan(entity: &'static Entity, base: &Url, options: CursorOptions, now: OffsetDateTime) -> Self {
        let limit = options.page_size.unwrap_or(entity.max_limit).clamp(1, entity.max_limit);
        let state = match entity.incremental {
            Incremental::SortToken => {
                let mut extra = vec![("last_modified", BEGINNING_OF_TIME)];
                if entity.fields_id {
                    extra.push(("fields", "id"));
                }
                Bookmark::Chain { next_link: Self::list_url(entity, base, limit, &extra).to_string(), high_water: None }
            }
            _ => Bookmark::Offset { since: None, offset: 0, started_at: rfc3339(now), high_water: None },
        };
        Self::starting(entity, base, limit, options.overlap, state, true)
    }

    /// The same scan of one parent's list (a per-parent entity; see
    /// [`Entity::parent`](super::catalog::Entity::parent)).
    pub fn under_parent(mut self, parent_id: &str) -> Self {
        self.path = self.entity.path_for(Some(parent_id));
        let fields: &[(&str, &str)] = if self.ids_only && self.entity.fields_id { &[("fields", "id")] } else { &[] };
        self.filters = filters_of(&self.url_with(fields));
        self
    }

    /// The entity being synced.
    pub fn entity(&self) -> &'static Entity {
        self.entity
    }

    /// The page size in use.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// What the pages read so far said about the scan's size.
    pub fn counts(&self) -> ScanCounts {
        self.counts
    }

    /// Whether a finished scan saw every record its pages' `count` promised. Offset paging over a
    /// list that changed during the scan can skip records (a delete behind the scan shifts the
    /// later pages), so for offset scans a `count` that moved counts as incomplete too; a chain
    /// keeps its order and moves changed records to its end.
    pub fn saw_everything(&self) -> bool {
        let ScanCounts { read, first_count, last_count } = self.counts;
        let offset_scan = self.entity.incremental != Incremental::SortToken;
        match last_count {
            Some(count) => !(read < count || (offset_scan && first_count != last_count)),
            None => true,
        }
    }

    /// What to store with the rows of the page just read.
    pub fn bookmark(&self) -> &Bookmark {
        &self.state
    }

    pub(crate) fn list_url(entity: &Entity, base: &Url, limit: u32, extra: &[(&str, &str)]) -> Url {
        Self::list_url_at(entity, entity.path, base, limit, extra)
    }

    /// This scan's list URL with `extra` parameters.
    fn url_with(&self, extra: &[(&str, &str)]) -> Url {
        Self::list_url_at(self.entity, &self.path, &self.base, self.limit, extra)
    }

    fn list_url_at(entity: &Entity, path: &str, base: &Url, limit: u32, extra: &[(&str, &str)]) -> Url {
        let mut url = base.clone();
        let path = format!("{}{}", base.path().trim_end_matches('/'), path);
        url.set_path(&path);
        url.set_query(None);
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("limit", &limit.to_string());
            for (k, v) in extra {
                q.append_pair(k, v);
            }
            if entity.include_inactive {
                q.append_pair("include_inactive", "true");
            }
            if entity.include_deceased {
                q.append_pair("include_deceased", "true");
            }
        }
        url
    }

    /// The URL of the next page.
    pub fn request_url(&self) -> Result<Url, PageError> {
        match &self.state {
            // Bookmarks stored before filters were restored on links get them back here.
            Bookmark::Chain { next_link, .. } => Url::parse(&restore_filters(next_link, &self.filters))
                .map_err(|e| PageError::Malformed { url: "stored next_link".into(), problem: e.to_string() }),
            Bookmark::Offset { since, offset, .. } => {
                let offset = offset.to_string();
                let mut extra = vec![("offset", offset.as_str())];
                if let Some(s) = since {
                    extra.push(("last_modified", s.as_str()));
                }
                if self.ids_only && self.entity.fields_id {
                    extra.push(("fields", "id"));
                }
                Ok(self.url_with(&extra))
            }
            Bookmark::Done { .. } => {
                Err(PageError::Malformed { url: self.entity.path.into(), problem: "the scan is finished".into() })
            }
        }
    }

    /// Takes in a page and its records' keys (for the high-water mark).
    pub fn advance(&mut self, page: &Page, keys: &[RecordKey]) -> Step {
        let n = page.value.len() as u64;
        self.counts.read += n;
        self.counts.first_count = self.counts.first_count.or(page.count);
        self.counts.last_count = page.count.or(self.counts.last_count);
        let page_high_water = page_high_water(keys);
        match &mut self.state {
            Bookmark::Chain { next_link, high_water } => {
                let hw = newer(high_water.take(), page_high_water.as_deref());
                let next = match (&page.next_link, &page.continuation_token) {
                    (Some(link), _) => Some(restore_filters(link, &self.filters)),
                    (None, Some(token)) => {
                        let current = restore_filters(next_link, &self.filters);
                        Some(with_continuation_token(&current, token))
                    }
                    (None, None) => None,
                };
                match next {
                    Some(link) if n > 0 => {
                        *next_link = link;
                        *high_water = hw;
                        Step::More
                    }
                    // An empty page ends the chain; its sort_token link is where the next run
                    // resumes (Blackbaud's advice). A continuation token is not kept across runs.
                    Some(link) if !has_continuation_token(&link) => {
                        *next_link = link;
                        *high_water = hw;
                        Step::Done
                    }
                    _ => {
                        // The API ended the chain without a reusable link: restart from the newest
                        // change next time, minus the overlap.
                        let since = restart_point(hw.as_deref(), self.overlap);
                        *next_link = Self::list_url_at(
                            self.entity,
                            &self.path,
                            &self.base,
                            self.limit,
                            &[("last_modified", since.as_str())],
                        )
                        .to_string();
                        *high_water = hw;
                        Step::Done
                    }
                }
            }
            Bookmark::Offset { offset, started_at, high_water, .. } => {
                *offset += n;
                let hw = newer(high_water.take(), page_high_water.as_deref());
                let finished = n < u64::from(self.limit) || page.count.is_some_and(|c| *offset >= c) || n == 0;
                if finished {
                    let next_since = match self.entity.incremental {
                        Incremental::Full => None,
                        _ => OffsetDateTime::parse(started_at, &Rfc3339).ok().map(|t| rfc3339(t - self.overlap)),
                    };
                    self.state = Bookmark::Done { since: next_since, high_water: hw };
                    Step::Done
                } else {
                    *high_water = hw;
                    Step::More
                }
            }
            Bookmark::Done { .. } => Step::Done,
        }
    }
}
