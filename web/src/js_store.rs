//! A token store the JavaScript app provides (`SkyAuth.withStore(config, store)`), so a server-side
//! app keeps its tokens in a file, a KV store or a database with the CLI's policy: the core's
//! [`Session`](skysync_core::session::Session) does the deciding (preserve on routine refreshes,
//! rotate inside the renewal window, single flight in the process, the rotation intent saved
//! before the rotation is sent), and this adapter only moves JSON text.
//!
//! The contract (`SkyTokenStore` in the `.d.ts`): `load()` resolves to `{ json, generation }` or
//! `null`; `save(json, expectedGeneration)` stores `json` only if the stored generation is still
//! `expectedGeneration` (`null`: nothing stored) and resolves to the new generation, or rejects
//! with an `Error` whose `name` is `"ConflictError"` when it is not (compare-and-swap).

use std::cell::RefCell;

use skysync_core::store::{StoreError, TokenStore, Versioned};
use skysync_core::token_set::TokenSet;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen(typescript_custom_section)]
const TS_STORE: &str = r#"
/** Where SkyAuth keeps tokens when given one (`SkyAuth.withStore(config, store)`); compare-and-swap.
 * `json` holds the refresh token: keep it private. */
export interface SkyTokenStore {
  /** The stored record, or null when nothing is stored. */
  load(): Promise<{ json: string; generation: number } | null>;
  /** Stores `json` if the stored generation is still `expectedGeneration` (null: nothing
   * stored) and resolves to the new generation; otherwise rejects with an Error named
   * "ConflictError". */
  save(json: string, expectedGeneration: number | null): Promise<number>;
}
// A save that fails after a rotation (the store took the rotation intent, then not the new
// tokens) is reported as RotationLostError: the stored refresh token no longer works, and the
// same SkyAuth's exportBundle() holds the new one until the object is gone.
"#;

#[wasm_bindgen]
extern "C" {
    /// The app's store object.
    #[wasm_bindgen(typescript_type = "SkyTokenStore")]
    pub type JsTokenStore;

    #[wasm_bindgen(method, catch, js_name = load)]
    fn load_js(this: &JsTokenStore) -> Result<js_sys::Promise, JsValue>;

    #[wasm_bindgen(method, catch, js_name = save)]
    fn save_js(this: &JsTokenStore, json: &str, expected: JsValue) -> Result<js_sys::Promise, JsValue>;
}

/// [`TokenStore`] over the app's object, remembering the last record seen (for `tokenInfo()` and
/// `exportBundle()`, which are synchronous).
pub(crate) struct AppStore {
    object: JsTokenStore,
    last: RefCell<Option<Versioned>>,
}

impl AppStore {
    pub(crate) fn new(object: JsTokenStore) -> Self {
        Self { object, last: RefCell::new(None) }
    }

    /// The last record loaded or saved.
    pub(crate) fn snapshot(&self) -> Option<Versioned> {
        self.last.borrow().clone()
    }
}

/// The error's `name` and `message`, never its stack (which may quote the app's data).
fn describe(e: &JsValue) -> (String, String) {
    let get = |k: &str| js_sys::Reflect::get(e, &k.into()).ok().and_then(|v| v.as_string()).unwrap_or_default();
    let message = e.as_string().unwrap_or_else(|| get("message"));
    (get("name"), message)
}

fn failed(what: &str, e: &JsValue) -> StoreError {
    let (name, message) = describe(e);
    StoreError::Io(format!("the app's token store failed to {what}: {name}: {message}"))
}

#[async_trait::async_trait(?Send)]
impl TokenStore for AppStore {
    async fn load(&self) -> Result<Option<Versioned>, StoreError> {
        let promise = self.object.load_js().map_err(|e| failed("load", &e))?;
        let value = JsFuture::from(promise).await.map_err(|e| failed("load", &e))?;
        if value.is_null() || value.is_undefined() {
            *self.last.borrow_mut() = None;
            return Ok(None);
        }
        let field = |k: &str| js_sys::Reflect::get(&value, &k.into()).unwrap_or(JsValue::UNDEFINED);
        let json = field("json").as_string().ok_or_else(|| {
            StoreError::Corrupt("the app's token store loaded a record without a string `json`".into())
        })?;
        let generation = field("generation").as_f64().filter(|g| g.fract() == 0.0 && *g >= 0.0).ok_or_else(|| {
            StoreError::Corrupt("the app's token store loaded a record without a numeric `generation`".into())
        })? as u64;
        // serde's message may quote the text, which holds tokens: only its position is kept.
        let tokens: TokenSet = serde_json::from_str(&json).map_err(|e| {
            StoreError::Corrupt(format!(
                "the app's token store holds unreadable tokens (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        let record = Versioned { tokens, generation };
        *self.last.borrow_mut() = Some(record.clone());
        Ok(Some(record))
    }

    async fn save(&self, tokens: &TokenSet, expected: Option<u64>) -> Result<u64, StoreError> {
        let json = serde_json::to_string(tokens).map_err(|e| StoreError::Io(format!("serializing the tokens: {e}")))?;
        let expected_js = expected.map_or(JsValue::NULL, |g| JsValue::from_f64(g as f64));
        let promise = self.object.save_js(&json, expected_js).map_err(|e| failed("save", &e))?;
        let value = match JsFuture::from(promise).await {
            Ok(v) => v,
            Err(e) if describe(&e).0 == "ConflictError" => return Err(StoreError::Conflict { expected, found: None }),
            Err(e) => return Err(failed("save", &e)),
        };
        let generation = value.as_f64().filter(|g| g.fract() == 0.0 && *g >= 0.0).ok_or_else(|| {
            StoreError::Io("the app's token store's save() did not resolve to a generation number".into())
        })? as u64;
        *self.last.borrow_mut() = Some(Versioned { tokens: tokens.clone(), generation });
        Ok(generation)
    }

    /// A rotated refresh token the store refused: the only one that works now. There is no
    /// second place to write it, so it stays in this object (`exportBundle()`, `tokenInfo(true)`
    /// hand it out) and the session reports `RotationLostError`, never silence.
    async fn rescue(&self, tokens: &TokenSet) -> Result<String, StoreError> {
        let mut last = self.last.borrow_mut();
        let generation = last.as_ref().map_or(0, |v| v.generation);
        *last = Some(Versioned { tokens: tokens.clone(), generation });
        Err(StoreError::Io("the app's token store has no second place for them".into()))
    }
}
