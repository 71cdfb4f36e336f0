#![cfg_attr(target_arch = "wasm32", allow(dead_code))]
//! A scripted HTTP transport and a thread-backed runtime for tests.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::host::{BoxFuture, Runtime};
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
    gate: Mutex<Option<Arc<Gate>>>,
}

/// Holds every request at the transport until opened, and counts the ones that arrived: a test
/// can know a refresh is in flight (and keep it there) without sleeping.
#[derive(Default)]
pub struct Gate {
    state: Mutex<(usize, bool)>,
    changed: Condvar,
}

/// How long a test waits on a gate before failing (instead of hanging).
const GATE_TIMEOUT: Duration = Duration::from_secs(30);

impl Gate {
    /// Blocks until `n` requests have arrived at the gate.
    pub fn wait_for_arrivals(&self, n: usize) {
        let guard = self.state.lock().unwrap();
        let (state, timeout) =
            self.changed.wait_timeout_while(guard, GATE_TIMEOUT, |(arrived, _)| *arrived < n).unwrap();
        assert!(!timeout.timed_out(), "only {} of {n} requests reached the transport", state.0);
    }

    /// Lets every held (and later) request through.
    pub fn open(&self) {
        self.state.lock().unwrap().1 = true;
        self.changed.notify_all();
    }

    fn pass(&self) {
        let mut guard = self.state.lock().unwrap();
        guard.0 += 1;
        self.changed.notify_all();
        let (guard, timeout) = self.changed.wait_timeout_while(guard, GATE_TIMEOUT, |(_, open)| !*open).unwrap();
        drop(guard);
        assert!(!timeout.timed_out(), "the test never opened the gate");
    }
}

impl FakeHttp {
    pub fn new(answers: Vec<Answer>) -> Arc<Self> {
        Arc::new(Self { answers: Mutex::new(answers.into()), ..Default::default() })
    }
    /// From now on, requests wait at the returned gate until it is opened.
    pub fn hold(&self) -> Arc<Gate> {
        let gate = Arc::new(Gate::default());
        *self.gate.lock().unwrap() = Some(gate.clone());
        gate
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
        let gate = self.gate.lock().unwrap().clone();
        if let Some(gate) = gate {
            gate.pass();
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
