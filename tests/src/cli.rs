//! Black-box harness for the `skysync` binary: a private HOME per test, a simulator started in
//! this process, and runs that capture stdout, stderr and the exit code.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use skysync_cli::sim::{SimConfig, SimHandle};
use skysync_core::bundle::{BundleContent, TokenBundle};
use skysync_core::token_set::TokenSet;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

fn newest_source(dir: &Path, newest: &mut SystemTime) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            newest_source(&path, newest);
        } else if let Ok(m) = entry.metadata().and_then(|m| m.modified())
            && m > *newest
        {
            *newest = m;
        }
    }
}

/// The `skysync` binary next to this test executable (`target/<profile>/skysync`), built once
/// with `cargo build -p skysync-cli --bin skysync` when missing or older than the sources.
/// `SKYSYNC_BIN` overrides the search.
pub fn skysync_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("SKYSYNC_BIN") {
            return PathBuf::from(p);
        }
        let exe = std::env::current_exe().expect("current_exe");
        // target/<profile>/deps/it-<hash> → target/<profile>
        let profile_dir = exe.parent().and_then(Path::parent).expect("test binary lives in target/<profile>/deps");
        let bin = profile_dir.join(format!("skysync{}", std::env::consts::EXE_SUFFIX));
        let root = workspace_root();
        let mut newest = SystemTime::UNIX_EPOCH;
        for dir in ["cli/src", "core/src", "cli/Cargo.toml", "core/Cargo.toml", "Cargo.lock"] {
            let p = root.join(dir);
            if p.is_dir() {
                newest_source(&p, &mut newest);
            } else if let Ok(m) = p.metadata().and_then(|m| m.modified()) {
                newest = newest.max(m);
            }
        }
        let built = bin.metadata().and_then(|m| m.modified()).ok();
        if built.is_none_or(|b| b < newest) {
            let target_dir = profile_dir.parent().expect("target dir");
            let mut cmd = std::process::Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
            cmd.current_dir(&root)
                .args(["build", "-p", "skysync-cli", "--bin", "skysync", "--target-dir"])
                .arg(target_dir);
            if profile_dir.file_name().is_some_and(|n| n == "release") {
                cmd.arg("--release");
            }
            let status = cmd.status().expect("running cargo build for the skysync binary");
            assert!(status.success(), "cargo build -p skysync-cli --bin skysync failed");
        }
        assert!(bin.exists(), "{} does not exist", bin.display());
        bin
    })
}

/// A finished run.
#[derive(Debug, Clone)]
pub struct Run {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Panics with the run's output unless it exited with `code`.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "unexpected exit code\n--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr);
        self
    }
}

/// One test's world: a simulator, a private HOME and the environment pointing skysync at both.
#[derive(Debug)]
pub struct Skysync {
    /// The simulator.
    pub sim: SimHandle,
    home: tempfile::TempDir,
    env: Mutex<Vec<(String, String)>>,
    outputs: Mutex<Vec<String>>,
    _deadline: crate::deadline::Deadline,
}

/// The redirect URI every world starts with: port 0, so `skysync login` binds any free port and
/// sends that one (no port is probed and then bound by someone else). [`Skysync::start_login`]
/// registers the URI the CLI actually sent, as a developer registers theirs with the application.
pub const REDIRECT_ANY_PORT: &str = "http://127.0.0.1:0/callback";

impl Skysync {
    /// A simulator with default settings (1000 records).
    pub async fn start() -> Self {
        Self::with_sim(SimConfig { records: 50, ..SimConfig::default() }).await
    }

    /// A simulator with `cfg` (its port is replaced by 0; see [`crate::sky::start_sim`]).
    pub async fn with_sim(cfg: SimConfig) -> Self {
        let sim = crate::sky::start_sim(cfg).await;
        let home = tempfile::tempdir().expect("temp HOME");
        let c = sim.config();
        // The simulator matches redirect URIs exactly, as Blackbaud does: register the one the
        // CLI is configured with, as a developer would (a login's listener registers its own).
        sim.register_redirect_uri(REDIRECT_ANY_PORT);
        let env = vec![
            ("HOME".into(), home.path().display().to_string()),
            ("XDG_CONFIG_HOME".into(), home.path().join("config").display().to_string()),
            ("XDG_DATA_HOME".into(), home.path().join("data").display().to_string()),
            ("SKYSYNC_AUTH_URL".into(), sim.authorize_url().to_string()),
            ("SKYSYNC_TOKEN_URL".into(), sim.token_url().to_string()),
            ("SKYSYNC_API_URL".into(), sim.api_url().to_string()),
            ("SKYSYNC_CLIENT_ID".into(), c.client_id.clone()),
            ("SKYSYNC_CLIENT_SECRET".into(), c.client_secret.clone()),
            ("SKYSYNC_SUBSCRIPTION_KEY".into(), c.subscription_key.clone()),
            ("SKYSYNC_REDIRECT_URI".into(), REDIRECT_ANY_PORT.into()),
        ];
        Self {
            sim,
            home,
            env: Mutex::new(env),
            outputs: Mutex::new(Vec::new()),
            _deadline: crate::deadline::Deadline::start(),
        }
    }

    /// Sets (or with `None` removes) an environment variable for later runs. A new
    /// `SKYSYNC_REDIRECT_URI` is also registered with the simulator, as a developer would register
    /// it with the application.
    pub fn set_env(&self, name: &str, value: Option<&str>) {
        if name == "SKYSYNC_REDIRECT_URI"
            && let Some(uri) = value
        {
            self.sim.register_redirect_uri(uri);
        }
        let mut env = self.env.lock().expect("env");
        env.retain(|(k, _)| k != name);
        if let Some(v) = value {
            env.push((name.to_owned(), v.to_owned()));
        }
    }

    /// The value of one of the run environment's variables.
    pub fn env_value(&self, name: &str) -> Option<String> {
        self.env.lock().expect("env").iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    /// The private HOME.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// `$XDG_DATA_HOME/skysync/default`.
    pub fn data_dir(&self) -> PathBuf {
        self.home.path().join("data").join("skysync").join("default")
    }

    /// The token file.
    pub fn token_file(&self) -> PathBuf {
        self.data_dir().join("tokens.json")
    }

    /// The token file's envelope as JSON.
    pub fn stored(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.token_file()).expect("token file readable");
        serde_json::from_str(&text).expect("token file is JSON")
    }

    /// The stored refresh token.
    pub fn stored_refresh_token(&self) -> String {
        self.stored()["tokens"]["refresh_token"].as_str().expect("refresh token").to_owned()
    }

    /// The stored access token.
    pub fn stored_access_token(&self) -> String {
        self.stored()["tokens"]["access_token"].as_str().expect("access token").to_owned()
    }

    /// A `skysync` command with this world's environment (and nothing else but PATH).
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(skysync_bin());
        cmd.env_clear();
        if let Some(path) = std::env::var_os("PATH") {
            cmd.env("PATH", path);
        }
        for (k, v) in self.env.lock().expect("env").iter() {
            cmd.env(k, v);
        }
        cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        cmd
    }

    /// `sh -c script` with this world's environment, and `$SKYSYNC` naming the binary.
    pub fn shell(&self, script: &str) -> tokio::process::Command {
        let mut cmd = self.command(&[]);
        let std = cmd.as_std_mut();
        let mut sh = tokio::process::Command::new("sh");
        sh.env_clear();
        for (k, v) in std.get_envs() {
            if let Some(v) = v {
                sh.env(k, v);
            }
        }
        sh.env("SKYSYNC", skysync_bin()).arg("-c").arg(script);
        sh.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        sh
    }

    /// Records a run's output for [`Skysync::all_output`].
    pub fn record(&self, text: String) {
        self.outputs.lock().expect("outputs").push(text);
    }

    /// Everything every run printed (stdout and stderr), for secret scans.
    pub fn all_output(&self) -> Vec<String> {
        self.outputs.lock().expect("outputs").clone()
    }

    /// Runs `skysync args…` to completion (60 s at most).
    pub async fn run(&self, args: &[&str]) -> Run {
        self.run_with_stdin(args, None).await
    }

    /// Runs with `stdin` as standard input.
    pub async fn run_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Run {
        let mut cmd = self.command(args);
        if stdin.is_some() {
            cmd.stdin(Stdio::piped());
        }
        let mut child = cmd.spawn().expect("spawn skysync");
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().expect("stdin");
            pipe.write_all(input.as_bytes()).await.expect("write stdin");
            drop(pipe);
        }
        let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .expect("skysync finished within 60 s")
            .expect("skysync ran");
        self.finish(out)
    }

    /// Turns a finished process into a [`Run`], recording its output.
    pub fn finish(&self, out: std::process::Output) -> Run {
        let run = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        self.record(run.stdout.clone());
        self.record(run.stderr.clone());
        run
    }

    /// A fresh token set as if a user had just consented (the simulator mints it; no `/token`
    /// call is counted), adjusted by `adjust`.
    pub fn minted_tokens(&self, adjust: impl FnOnce(&mut TokenSet)) -> TokenSet {
        let mut tokens = crate::sky::minted_tokens(&self.sim);
        adjust(&mut tokens);
        tokens
    }

    /// Writes a refresh-token bundle of `tokens` into the temp dir and returns its path.
    pub fn bundle_file(&self, content: BundleContent) -> PathBuf {
        let bundle = TokenBundle::new(content, self.sim.now());
        let path = self.home.path().join(format!("bundle-{}.json", self.outputs.lock().expect("outputs").len()));
        std::fs::write(&path, bundle.to_json()).expect("write bundle");
        path
    }

    /// The redirect URI this world's CLI is configured with (`SKYSYNC_REDIRECT_URI`).
    pub fn redirect_uri(&self) -> url::Url {
        url::Url::parse(&self.env_value("SKYSYNC_REDIRECT_URI").expect("a redirect URI")).expect("a URL")
    }

    /// The OAuth configuration this world's CLI runs with: the simulator's client and endpoints
    /// and the configured redirect URI.
    pub fn oauth_config(&self) -> skysync_core::OAuthConfig {
        let mut oauth = crate::sky::oauth_config(&self.sim);
        oauth.redirect_uri = self.redirect_uri();
        oauth
    }

    /// A consent at the simulator for this world's configuration, as the consent page makes it:
    /// the pending authorization (verifier, redirect URI) and the code the simulator issued.
    pub async fn real_code(&self) -> (skysync_core::PendingAuthorization, skysync_core::secret::AuthorizationCode) {
        let pending = skysync_core::start_authorization(&self.oauth_config(), &skysync_core::host::OsEntropy);
        let callback = self.consent(&pending.url).await;
        let code = skysync_core::parse_callback(callback.as_str(), &pending.state, false).expect("the callback parses");
        (pending, code)
    }

    /// A code bundle from a real consent at the simulator (what the consent page downloads).
    pub async fn code_bundle(&self) -> BundleContent {
        let (pending, code) = self.real_code().await;
        BundleContent::AuthorizationCode {
            client_id: self.sim.config().client_id,
            code,
            code_verifier: pending.verifier,
            redirect_uri: pending.redirect_uri,
            obtained_at: self.sim.now(),
        }
    }

    /// Stores `tokens` with `skysync import` (the way a consent from the browser page arrives).
    pub async fn seed(&self, tokens: TokenSet) {
        let path = self.bundle_file(BundleContent::RefreshToken { tokens: Box::new(tokens) });
        // `--force`: a fixture stores exactly these tokens, expired or older ones included.
        self.run(&["import", "--force", path.to_str().expect("utf-8 path")]).await.expect_code(0);
    }

    /// Seeds tokens whose access token has already expired.
    pub async fn seed_expired_access(&self) -> TokenSet {
        let tokens = self.minted_tokens(|t| {
            t.access_expires_at = Some(self.sim.now() - time::Duration::hours(1));
        });
        self.seed(tokens.clone()).await;
        tokens
    }

    /// Starts `skysync login …` and returns the child and the authorization URL it printed on
    /// stderr (the rest of stderr is collected in the background). The `redirect_uri` in that URL
    /// (with the port the CLI bound, when configured with port 0) is registered with the
    /// simulator before this returns.
    pub async fn start_login(
        &self,
        args: &[&str],
    ) -> (tokio::process::Child, url::Url, tokio::task::JoinHandle<String>) {
        let mut cmd = self.command(args);
        cmd.stdin(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn skysync login");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let mut seen = String::new();
        let url = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.expect("read stderr") {
                seen.push_str(&line);
                seen.push('\n');
                if line.starts_with("http://") || line.starts_with("https://") {
                    return url::Url::parse(line.trim()).expect("the URL line is a URL");
                }
            }
            panic!("skysync login printed no URL; stderr:\n{seen}");
        })
        .await
        .expect("login printed its URL within 30 s");
        if let Some(redirect) = url.query_pairs().find(|(k, _)| k == "redirect_uri").map(|(_, v)| v.into_owned()) {
            self.sim.register_redirect_uri(&redirect);
        }
        let rest = tokio::spawn(async move {
            let mut all = seen;
            while let Ok(Some(line)) = lines.next_line().await {
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        (child, url, rest)
    }

    /// Waits (30 s at most) for a login started with [`Self::start_login`] to end, with its
    /// whole stderr (recorded for [`Self::all_output`]).
    pub async fn finish_login(&self, child: tokio::process::Child, stderr: tokio::task::JoinHandle<String>) -> Run {
        let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
            .await
            .expect("skysync login finished within 30 s")
            .expect("skysync login ran");
        let mut run = self.finish(out);
        run.stderr = stderr.await.expect("stderr collected");
        self.record(run.stderr.clone());
        run
    }

    /// `skysync login --no-browser --timeout 30` through its loopback listener, the browser's part
    /// played here: consent at the simulator, then land on the callback (whatever it answers).
    pub async fn login_through_listener(&self) -> Run {
        let (child, authorize, stderr) = self.start_login(&["login", "--no-browser", "--timeout", "30"]).await;
        let callback = self.consent(&authorize).await;
        // The listener may answer with an error page; the run's exit code says what happened.
        let _ = reqwest::get(callback).await;
        self.finish_login(child, stderr).await
    }

    /// The `redirect_uri` a consent URL sends the browser back to.
    pub fn redirect_of(authorize: &url::Url) -> url::Url {
        let uri = authorize.query_pairs().find(|(k, _)| k == "redirect_uri").expect("a redirect_uri").1;
        url::Url::parse(&uri).expect("the redirect_uri is a URL")
    }

    /// Follows the consent URL like a browser that has already consented: GET it without following
    /// redirects and return the `Location` it redirects to.
    pub async fn consent(&self, authorize: &url::Url) -> url::Url {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        let resp = client.get(authorize.clone()).send().await.expect("GET authorize");
        assert_eq!(resp.status().as_u16(), 302, "authorize should redirect");
        let location = resp.headers().get("location").expect("Location").to_str().expect("ascii");
        url::Url::parse(location).expect("Location is absolute")
    }
}

/// Asserts that trace logging was on in `outputs` and that none of them shows a secret: neither
/// one of `secrets` nor anything shaped like a verifier or token.
pub fn assert_no_secrets(outputs: &[String], secrets: &[String]) {
    assert!(outputs.iter().any(|o| o.contains("TRACE") || o.contains("\"level\":\"TRACE\"")), "trace logging is on");
    for out in outputs {
        for secret in secrets {
            assert!(!out.contains(secret.as_str()), "a secret leaked into:\n{out}");
        }
        let shaped = long_secretish_runs(out);
        assert!(shaped.is_empty(), "secret-shaped text {shaped:?} in:\n{out}");
    }
}

/// Long runs of URL-safe base64 characters (80+): what verifiers and access tokens look like.
pub fn long_secretish_runs(text: &str) -> Vec<String> {
    let mut runs = Vec::new();
    let mut current = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            current.push(c);
        } else {
            if current.len() >= 80 {
                runs.push(std::mem::take(&mut current));
            }
            current.clear();
        }
    }
    runs
}
