//! `skysync consent-page`: serves the built browser consent page (web/dist) on loopback, for an
//! admin who runs skysync on their own machine. Any static host works as well; this one adds the
//! security headers a `<meta>` tag cannot carry.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::args::ConsentPageArgs;

pub use crate::args::CONSENT_PAGE_PORT as DEFAULT_PORT;

/// Used when index.html carries no Content-Security-Policy meta tag (a hand-made page).
const FALLBACK_CSP: &str = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
     img-src 'self'; connect-src 'self' https://oauth2.sky.blackbaud.com https://api.sky.blackbaud.com \
     http://127.0.0.1:* http://localhost:*; base-uri 'none'; form-action 'none'";

/// Where `web/build.sh` puts the page in this source tree.
pub fn default_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("web").join("dist")
}

/// The page directory to serve: `dir`, or the source tree's web/dist. Fails with the command that
/// builds it when the page is missing.
pub fn page_dir(dir: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let explicit = dir.is_some();
    let dir = dir.unwrap_or_else(default_dir);
    let complete = dir.join("index.html").is_file() && dir.join("pkg").join("skysync_web_bg.wasm").is_file();
    if !complete {
        if explicit {
            anyhow::bail!(
                "{} does not hold a built consent page (index.html and pkg/skysync_web_bg.wasm)",
                dir.display()
            );
        }
        anyhow::bail!(
            "the consent page is not built ({} is missing or incomplete); build it with `web/build.sh` \
             in the skysync source tree, or pass --dir",
            dir.display()
        );
    }
    Ok(dir.canonicalize().unwrap_or(dir))
}

/// A running page server. Stops on [`ConsentPageServer::shutdown`] or when dropped.
#[derive(Debug)]
pub struct ConsentPageServer {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl ConsentPageServer {
    /// `http://127.0.0.1:PORT/callback`: the page, and the redirect URI it defaults to.
    pub fn page_url(&self) -> url::Url {
        url::Url::parse(&format!("http://127.0.0.1:{}/callback", self.addr.port())).expect("valid URL")
    }

    /// Whether the page is also served on `[::1]` (where `localhost` may resolve first).
    pub fn serves_ipv6(&self) -> bool {
        self.tasks.len() > 1
    }

    /// Stops serving and waits for the server tasks.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
    }
}

impl Drop for ConsentPageServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

struct Page {
    /// Canonical: every served file must resolve inside it.
    dir: PathBuf,
    csp: HeaderValue,
    port: u16,
}

/// Serves `dir` on `127.0.0.1:port` (0: any free port) on the current tokio runtime, and on
/// `[::1]` at the same port when that is free: the printed URL says `localhost`, which a browser
/// may resolve to `::1` first (as `skysync login` does).
pub async fn serve(dir: &Path, port: u16) -> anyhow::Result<(SocketAddr, ConsentPageServer)> {
    let index = std::fs::read_to_string(dir.join("index.html"))
        .with_context(|| format!("reading {}", dir.join("index.html").display()))?;
    let csp = format!("{}; frame-ancestors 'none'", meta_csp(&index).unwrap_or(FALLBACK_CSP));
    let csp = HeaderValue::from_str(&csp).context("the page's Content-Security-Policy is not a valid header")?;
    let dir = dir.canonicalize().with_context(|| format!("resolving {}", dir.display()))?;
    // `localhost` may be ::1 or 127.0.0.1 to the browser: both or nothing (see crate::loopback).
    let fixes = "Stop whatever holds the port, or pick another with --port (and register \
                 http://localhost:PORT/callback with the application)";
    let listeners = crate::loopback::bind(Ipv4Addr::LOCALHOST.into(), port, true, fixes).await?;
    let addr = listeners[0].local_addr()?;
    let page = Arc::new(Page { dir, csp, port: addr.port() });
    let app = axum::Router::new().fallback(handle).with_state(page);
    let (stop, stopped) = watch::channel(false);
    let tasks = listeners
        .into_iter()
        .map(|listener| {
            let app = app.clone();
            let mut stopped = stopped.clone();
            tokio::spawn(async move {
                let server = axum::serve(listener, app).with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                });
                if let Err(e) = server.await {
                    tracing::warn!("consent page server stopped: {e}");
                }
            })
        })
        .collect();
    Ok((addr, ConsentPageServer { addr, stop, tasks }))
}

/// Serves the page until Ctrl-C.
pub async fn run(args: ConsentPageArgs) -> anyhow::Result<()> {
    let dir = page_dir(args.dir)?;
    let (addr, server) = serve(&dir, args.port).await?;
    let url = format!("http://localhost:{}/callback", addr.port());
    println!("skysync consent page (serving {})", dir.display());
    println!();
    println!("  Open:  {url}");
    println!();
    println!("Register {url} as a redirect URI of your application (exact match), authorize, then");
    println!("download the bundle and run `skysync import <file>` where skysync runs.");
    println!("Press Ctrl-C to stop.");
    let _ = tokio::signal::ctrl_c().await;
    server.shutdown().await;
    Ok(())
}

/// The `content` of `<meta http-equiv="Content-Security-Policy" content="...">`.
fn meta_csp(html: &str) -> Option<&str> {
    let at = html.find("http-equiv=\"Content-Security-Policy\"")?;
    let rest = &html[at..];
    let start = rest.find("content=\"")? + "content=\"".len();
    let len = rest[start..].find('"')?;
    Some(&rest[start..start + len])
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "wasm" => "application/wasm",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "ts" => "text/plain; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        _ => "application/octet-stream",
    }
}

/// The file a URL path names, if it is a plain relative path inside the page (no `..`, no
/// dotfiles, no backslashes).
fn file_for(dir: &Path, path: &str) -> Option<PathBuf> {
    let rel = match path {
        "/callback" | "/index.html" => "index.html",
        p => p.strip_prefix('/')?,
    };
    let mut file = dir.to_path_buf();
    for part in rel.split('/') {
        let ok = !part.is_empty()
            && !part.starts_with('.')
            && part.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !ok {
            return None;
        }
        file.push(part);
    }
    Some(file)
}

/// `file` with symlinks resolved, if it still lies inside `dir` (canonical): a link to a file
/// elsewhere is not served.
fn inside(dir: &Path, file: &Path) -> Option<PathBuf> {
    let real = file.canonicalize().ok()?;
    real.starts_with(dir).then_some(real)
}

fn with_headers(mut resp: Response, page: &Page) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, page.csp.clone());
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

async fn handle(State(page): State<Arc<Page>>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let host = parts.headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let resp = if crate::loopback::host_allowed(host, "localhost", page.port) {
        respond(&page, &parts.method, &parts.uri).await
    } else {
        // DNS rebinding: another site's name pointing at our port.
        (StatusCode::MISDIRECTED_REQUEST, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "wrong host\n")
            .into_response()
    };
    with_headers(resp, &page)
}

async fn respond(page: &Page, method: &Method, uri: &axum::http::Uri) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "GET, HEAD")]).into_response();
    }
    let path = uri.path();
    if path == "/" {
        // Keep the query: a redirect registered as http://localhost:PORT/ still reaches the page.
        let target = match uri.query() {
            Some(q) => format!("/callback?{q}"),
            None => "/callback".to_owned(),
        };
        return (StatusCode::FOUND, [(header::LOCATION, target)]).into_response();
    }
    let Some(file) = file_for(&page.dir, path).and_then(|f| inside(&page.dir, &f)) else {
        return not_found();
    };
    match tokio::fs::read(&file).await {
        Ok(bytes) => {
            let body = if method == Method::HEAD { Body::empty() } else { Body::from(bytes) };
            ([(header::CONTENT_TYPE, content_type(&file))], body).into_response()
        }
        Err(_) => not_found(),
    }
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "not found\n").into_response()
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;

    use super::*;

    #[test]
    fn paths_stay_inside_the_page() {
        let d = Path::new("/srv/page");
        assert_eq!(file_for(d, "/callback"), Some(d.join("index.html")));
        assert_eq!(file_for(d, "/pkg/skysync_web_bg.wasm"), Some(d.join("pkg/skysync_web_bg.wasm")));
        for bad in ["/../etc/passwd", "/pkg/../../x", "/.git/config", "//x", "/a\\b", "/pkg/", "x"] {
            assert_eq!(file_for(d, bad), None, "{bad}");
        }
    }

    #[test]
    fn types_and_csp() {
        assert_eq!(content_type(Path::new("a/b.wasm")), "application/wasm");
        assert_eq!(content_type(Path::new("app.js")), "text/javascript; charset=utf-8");
        let html = r#"<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'self'">"#;
        assert_eq!(meta_csp(html), Some("default-src 'none'; script-src 'self'"));
        assert_eq!(meta_csp("<html>"), None);
    }

    #[test]
    fn the_shipped_page_has_a_csp_the_server_can_repeat() {
        let index = include_str!("../../../web/www/index.html");
        let csp = meta_csp(index).expect("index.html has a CSP meta tag");
        assert!(csp.contains("script-src 'self' 'wasm-unsafe-eval'"));
        assert!(!csp.contains("unsafe-inline"));
        assert!(HeaderValue::from_str(csp).is_ok());
        // Served by any static host too, so the page itself must withhold the referrer (the
        // callback URL holds the code).
        assert!(index.contains(r#"<meta name="referrer" content="no-referrer">"#));
    }

    /// One raw HTTP/1.1 request (no client-side path normalisation): status line and headers
    /// (lower-cased names), and the body.
    async fn raw_get(addr: SocketAddr, method: &str, target: &str) -> (String, Vec<u8>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request =
            format!("{method} {target} HTTP/1.1\r\nHost: localhost:{}\r\nConnection: close\r\n\r\n", addr.port());
        conn.write_all(request.as_bytes()).await.unwrap();
        let mut reply = Vec::new();
        conn.read_to_end(&mut reply).await.unwrap();
        let split = reply.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete head");
        let head = String::from_utf8_lossy(&reply[..split]).to_ascii_lowercase();
        (head, reply[split + 4..].to_vec())
    }

    #[tokio::test]
    async fn serves_the_page_with_its_types_and_headers_and_nothing_outside_it() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("outside.txt"), "outside secret").unwrap();
        let dir = root.path().join("dist");
        std::fs::create_dir_all(dir.join("pkg")).unwrap();
        std::fs::write(dir.join("index.html"), include_str!("../../../web/www/index.html")).unwrap();
        std::fs::write(dir.join("app.js"), "export {};").unwrap();
        std::fs::write(dir.join("pkg").join("skysync_web_bg.wasm"), b"\0asm\x01\0\0\0").unwrap();
        std::fs::write(dir.join(".env"), "hidden secret").unwrap();
        let (addr, server) = serve(&dir, 0).await.unwrap();

        let (head, body) = raw_get(addr, "GET", "/callback?code=c&state=s").await;
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(head.contains("content-type: text/html; charset=utf-8"), "{head}");
        assert!(String::from_utf8_lossy(&body).contains("Content-Security-Policy"));
        let csp = meta_csp(include_str!("../../../web/www/index.html")).unwrap().to_ascii_lowercase();
        assert!(head.contains(&format!("content-security-policy: {csp}; frame-ancestors 'none'")), "{head}");
        for h in ["x-content-type-options: nosniff", "referrer-policy: no-referrer", "cache-control: no-store"] {
            assert!(head.contains(h), "{h} missing: {head}");
        }
        let (head, body) = raw_get(addr, "GET", "/pkg/skysync_web_bg.wasm").await;
        assert!(head.contains("content-type: application/wasm"), "{head}");
        assert_eq!(body, b"\0asm\x01\0\0\0");
        let (head, _) = raw_get(addr, "GET", "/app.js").await;
        assert!(head.contains("content-type: text/javascript"), "{head}");
        let (head, _) = raw_get(addr, "GET", "/?code=c&state=s").await;
        assert!(head.starts_with("http/1.1 302") && head.contains("location: /callback?code=c&state=s"), "{head}");

        for target in [
            "/../outside.txt",
            "/pkg/../../outside.txt",
            "/%2e%2e/outside.txt",
            "/pkg/..%2f..%2foutside.txt",
            "/pkg%2f..%2f..%2foutside.txt",
            "/..\\outside.txt",
            "/.env",
            "/pkg/",
            "/pkg",
            "//etc/passwd",
            "/etc/passwd",
        ] {
            let (head, body) = raw_get(addr, "GET", target).await;
            assert!(head.starts_with("http/1.1 404") || head.starts_with("http/1.1 400"), "{target}: {head}");
            let body = String::from_utf8_lossy(&body);
            assert!(!body.contains("secret") && !body.contains("root:"), "{target} leaked: {body}");
        }
        let (head, _) = raw_get(addr, "POST", "/callback").await;
        assert!(head.starts_with("http/1.1 405"), "{head}");

        // `localhost` may resolve to ::1 first: the page answers there too (where the system has it).
        if std::net::TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).is_ok() {
            assert!(server.serves_ipv6());
            let v6 = SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port());
            let (head, _) = raw_get(v6, "GET", "/callback").await;
            assert!(head.starts_with("http/1.1 200"), "[::1]: {head}");
        } else {
            assert!(!server.serves_ipv6(), "no IPv6 loopback here, yet the page claims to serve it");
            // Straight to the process's stderr (libtest captures `eprintln!` of passing tests).
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "NOT CHECKED on this machine (no IPv6 loopback): the page on [::1]");
        }
        server.shutdown().await;
    }
}
