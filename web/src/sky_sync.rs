//! The `SkySync` class (feature `sync`, in the npm package, not the consent page): one entity's
//! incremental sync over the core's planner ([`EntityPlan`]), with the rows going to the app.
//!
//! skysync does the SKY API's part: which URL comes next (`next_link` replayed with the list's
//! filters on every page), the pace, 429s and the quota (the API client of the `SkyAuth` it is
//! given, so `apiGet` and a sync share one pace), and one refresh on a 401 through that
//! `SkyAuth`'s session and store. The app does the storing: `onPage(rows, bookmark)` commits a
//! page's rows and its bookmark together, and the next run starts from the last bookmark the app
//! committed. A run that stops (an error, a closed tab) loses nothing: the app's last committed
//! bookmark covers exactly the rows it committed.

use std::rc::Rc;

use skysync_core::api::CallStats;
use skysync_core::http::Method;
use skysync_core::sync::{CATALOG, Commit, EntityPlan, Next, Record, StoredState};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::error::{ErrorKind, Failure};
use crate::sky_auth::{Inner, SkyAuth};
use crate::sync_config::{SyncConfig, SyncResult, plan_failure};

#[wasm_bindgen(typescript_custom_section)]
const TS_SYNC: &str = r#"
/** The options of `new SkySync(auth, options)`. Unknown fields are an error. */
export interface SkySyncOptions {
  /** A catalog entity (`SkySync.entities()`), e.g. "constituents". */
  entity: string;
  /** Records per page. Default: the endpoint's maximum (fewest calls). */
  pageSize?: number;
}

/** What one `run()` did. */
export interface SkySyncResult {
  entity: string;
  /** "initial" (no bookmark given) or "incremental". */
  mode: "initial" | "incremental";
  /** Pages handed to onPage. */
  pages: number;
  /** Rows handed to onPage. */
  rows: number;
  /** SKY API requests sent (retries included). */
  calls: number;
  /** The bookmark of the last page (the one the app committed last), or null if none was fetched. */
  bookmark: string | null;
}

/** Called with each page's records (the JSON the SKY API sent, possibly none) and the bookmark
 * that covers them. Commit both together (one transaction), then resolve; the next page is
 * fetched only after that. A rejection stops the run with the app's own error. */
export type SkySyncPageHandler = (rows: any[], bookmark: string) => Promise<void> | void;
"#;

/// One entity's incremental sync into the app's storage.
///
/// ```js
/// const sync = new SkySync(auth, { entity: "constituents" });
/// const result = await sync.run(await db.bookmark(), async (rows, bookmark) => {
///   await db.transaction(async (tx) => { await tx.upsert(rows); await tx.setBookmark(bookmark); });
/// });
/// ```
#[wasm_bindgen]
pub struct SkySync {
    auth: Rc<Inner>,
    config: SyncConfig,
}

impl std::fmt::Debug for SkySync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SkySync").field("entity", &self.config.entity.name).finish_non_exhaustive()
    }
}

#[wasm_bindgen]
impl SkySync {
    /// A sync of `options.entity` through `auth` (which needs `subscriptionKey` and tokens).
    /// Throws `ConfigError` for unknown options or an unknown entity.
    #[wasm_bindgen(constructor)]
    pub fn new(
        auth: &SkyAuth,
        #[wasm_bindgen(unchecked_param_type = "SkySyncOptions")] options: JsValue,
    ) -> Result<SkySync, JsValue> {
        let text = js_sys::JSON::stringify(&options)
            .ok()
            .and_then(|s| s.as_string())
            .ok_or_else(|| Failure::new(ErrorKind::Config, "the SkySync options must be a plain object"))?;
        Ok(SkySync { auth: auth.shared(), config: SyncConfig::from_json(&text)? })
    }

    /// The entities skysync can sync, by name.
    pub fn entities() -> Vec<String> {
        CATALOG.iter().map(|e| e.name.to_owned()).collect()
    }

    /// The entity this object syncs.
    #[wasm_bindgen(getter)]
    pub fn entity(&self) -> String {
        self.config.entity.name.to_owned()
    }

    /// Runs the sync from `bookmark` (the last one the app committed; `null` or `undefined` for
    /// everything), calling `onPage(rows, bookmark)` for each page and awaiting it. Resolves to a
    /// `SkySyncResult`; rejects with a `SkyErrorName`d Error (`BookmarkError` for a bookmark this
    /// entity never handed out), or with the app's own error when `onPage` failed.
    #[wasm_bindgen(unchecked_return_type = "Promise<SkySyncResult>")]
    pub fn run(
        &self,
        bookmark: Option<String>,
        #[wasm_bindgen(js_name = onPage, unchecked_param_type = "SkySyncPageHandler")] on_page: js_sys::Function,
    ) -> js_sys::Promise {
        let (auth, config) = (self.auth.clone(), self.config);
        wasm_bindgen_futures::future_to_promise(async move { run(&auth, config, bookmark, &on_page).await })
    }
}

async fn run(
    auth: &Inner,
    config: SyncConfig,
    bookmark: Option<String>,
    on_page: &js_sys::Function,
) -> Result<JsValue, JsValue> {
    let api = auth.api()?;
    let base = auth.api_base()?;
    let stored = bookmark.map(|b| StoredState { bookmark: Some(b), ..StoredState::default() });
    let mut plan =
        EntityPlan::new(config.entity, &base, stored.as_ref(), &config.options, auth.now()).map_err(plan_failure)?;
    let stats = CallStats::new();
    let mut result =
        SyncResult { entity: config.entity.name, mode: plan.mode(), pages: 0, rows: 0, calls: 0, bookmark: None };
    loop {
        match plan.next().map_err(plan_failure)? {
            Next::Fetch => {
                let url = plan.request_url().map_err(plan_failure)?;
                let sent = api.send_with(Method::Get, url.as_str(), None, &stats).await;
                result.calls = stats.snapshot().calls;
                let response = sent.map_err(Failure::from)?;
                let outcome = plan.page(&url, &response).map_err(plan_failure)?;
                let Commit::Records { records, bookmark } = outcome.commit else {
                    return Err(Failure::new(
                        ErrorKind::Api,
                        "the planner asked for an id scan, which SkySync does not run",
                    )
                    .into());
                };
                let rows = rows_of(&records)?;
                // The app's own error (thrown or rejected) passes through unchanged.
                let handled = on_page.call2(&JsValue::NULL, &rows, &JsValue::from_str(&bookmark))?;
                JsFuture::from(js_sys::Promise::resolve(&handled)).await?;
                result.pages += 1;
                result.rows += records.len() as u64;
                result.bookmark = Some(bookmark);
            }
            Next::Done => break,
            other => {
                return Err(Failure::new(
                    ErrorKind::Api,
                    format!("the planner asked for {other:?}, which SkySync does not run"),
                )
                .into());
            }
        }
    }
    Ok(crate::sky_auth::to_js(&result)?)
}

/// A page's records as a JavaScript array, parsed once from the JSON the API sent.
fn rows_of(records: &[Record]) -> Result<JsValue, Failure> {
    let mut text = String::with_capacity(records.iter().map(|r| r.data.get().len() + 1).sum::<usize>() + 2);
    text.push('[');
    for (i, r) in records.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(r.data.get());
    }
    text.push(']');
    js_sys::JSON::parse(&text).map_err(|_| Failure::new(ErrorKind::Api, "a page's records are not JSON"))
}
