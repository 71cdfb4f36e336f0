#![cfg_attr(target_arch = "wasm32", allow(dead_code))]
//! A scripted HTTP transport and a thread-backed runtime for tests.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::env::{BoxFuture, Runtime};
use crate::http::{HttpClient, HttpRequest, HttpResponse, TransportError};

/// One scripted answer.
pub enum Answer {
    Json(u16, &'static str),
    Raw(HttpResponse),
    Fail(TransportError),
}

pub fn json(status: u16, body: &str) -> HttpResponse {
    HttpResponse {
        status,
        headers: vec![("content-type".into(), "application/json; charset=utf-8".into())],
        body: body.as_bytes().to_vec(),
    }
}

/// Answers requests from a queue and remembers them.
#[derive(Default)]
pub struct FakeHttp {
    answers: Mutex<VecDeque<Answer>>,
    pub requests: Mutex<Vec<HttpRequest>>,
    pub calls: AtomicUsize,
    pub delay: Mutex<Option<Duration>>,
}

impl FakeHttp {
    pub fn new(answers: Vec<Answer>) -> Arc<Self> {
        Arc::new(Self { answers: Mutex::new(answers.into()), ..Default::default() })
    }
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
    pub fn form(&self, i: usize) -> Vec<(String, String)> {
        let reqs = self.requests.lock().unwrap();
        url::form_urlencoded::parse(&reqs[i].body).into_owned().collect()
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl HttpClient for FakeHttp {
    async fn execute(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.requests.lock().unwrap().push(request);
        let delay = *self.delay.lock().unwrap();
        if let Some(d) = delay {
            std::thread::sleep(d);
        }
        let next = self.answers.lock().unwrap().pop_front();
        match next.expect("the fake transport ran out of scripted answers") {
            Answer::Json(s, b) => Ok(json(s, b)),
            Answer::Raw(r) => Ok(r),
            Answer::Fail(e) => Err(e),
        }
    }
}

/// Runs spawned tasks on their own threads; sleeps are recorded, not waited.
#[derive(Default)]
pub struct ThreadRuntime {
    pub slept: Mutex<Vec<Duration>>,
}

#[cfg(not(target_arch = "wasm32"))]
impl Runtime for ThreadRuntime {
    fn spawn(&self, task: BoxFuture<'static, ()>) {
        std::thread::spawn(move || futures::executor::block_on(task));
    }
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        self.slept.lock().unwrap().push(duration);
        Box::pin(async {})
    }
}

#[cfg(target_arch = "wasm32")]
impl Runtime for ThreadRuntime {
    fn spawn(&self, task: BoxFuture<'static, ()>) {
        wasm_bindgen_futures::spawn_local(task);
    }
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        self.slept.lock().unwrap().push(duration);
        Box::pin(async {})
    }
}
