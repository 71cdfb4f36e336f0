//! The browser as the core's host: `Date.now()` for the clock, `spawn_local` for background work
//! and `setTimeout` for sleeping. Works in windows and workers (it uses the global object).

use std::time::Duration;

use skysync_core::host::{BoxFuture, Clock, Runtime};
use time::OffsetDateTime;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// The browser's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct BrowserClock;

impl Clock for BrowserClock {
    fn now(&self) -> OffsetDateTime {
        let nanos = (js_sys::Date::now() * 1_000_000.0) as i128;
        OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

/// The browser's event loop.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct BrowserRuntime;

impl Runtime for BrowserRuntime {
    fn spawn(&self, task: BoxFuture<'static, ()>) {
        // Runs to completion on the event loop even when the promise that awaited it is dropped.
        wasm_bindgen_futures::spawn_local(task);
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        let ms = i32::try_from(duration.as_millis()).unwrap_or(i32::MAX);
        let promise = js_sys::Promise::new(&mut |resolve, _reject| {
            let global = js_sys::global();
            let set_timeout = js_sys::Reflect::get(&global, &"setTimeout".into())
                .ok()
                .and_then(|f| f.dyn_into::<js_sys::Function>().ok());
            match set_timeout {
                Some(f) => {
                    let _ = f.call2(&global, &resolve, &ms.into());
                }
                // No timers (should not happen in a browser): do not hang, resolve at once.
                None => {
                    let _ = resolve.call0(&wasm_bindgen::JsValue::UNDEFINED);
                }
            }
        });
        Box::pin(async move {
            let _ = JsFuture::from(promise).await;
        })
    }
}
