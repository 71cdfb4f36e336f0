//! `--ping-url URL`: start, success and failure pings in the healthchecks.io convention
//! (`URL/start` before the command, `URL` after a success, `URL/fail` after a failure), so a
//! monitor notices a nightly run that failed or never ran.
//!
//! A ping that cannot be delivered is a warning: monitoring never changes the run's exit code.
//! The URL is treated as a secret (anyone holding it can report on the check): it is logged only
//! as its host.

use std::time::Duration;

use url::Url;

/// How long one ping may take.
const PING_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends the pings of one run (nothing without a URL).
#[derive(Debug)]
pub struct Pinger {
    base: Option<Url>,
    client: Option<reqwest::Client>,
}

impl Pinger {
    /// Pings `base` (none: a no-op).
    pub fn new(base: Option<Url>) -> Pinger {
        let client = base.as_ref().and_then(|_| reqwest::Client::builder().timeout(PING_TIMEOUT).build().ok());
        Pinger { base, client }
    }

    /// `URL/start`.
    pub async fn start(&self) {
        self.send("start", String::new()).await;
    }

    /// `URL` after exit code 0 (and `status`'s warning, 10), `URL/fail` with the error's first
    /// line as the body otherwise.
    pub async fn finish(&self, code: u8, error: Option<String>) {
        if code == crate::exit::OK || code == crate::exit::WARNING {
            self.send("", String::new()).await;
        } else {
            let body = format!("exit code {code}: {}", error.unwrap_or_default());
            self.send("fail", body).await;
        }
    }

    async fn send(&self, suffix: &str, body: String) {
        let (Some(base), Some(client)) = (&self.base, &self.client) else { return };
        let url = with_suffix(base, suffix);
        let host = base.host_str().unwrap_or_default().to_owned();
        match client.post(url).body(body).send().await {
            Ok(r) if r.status().is_success() => tracing::debug!(host, suffix, "pinged"),
            Ok(r) => tracing::warn!(host, suffix, status = r.status().as_u16(), "the ping URL refused the ping"),
            Err(e) => tracing::warn!(host, suffix, error = %e.without_url(), "could not send the ping"),
        }
    }
}

/// `base` with `/suffix` appended to its path (`base` itself for an empty suffix).
fn with_suffix(base: &Url, suffix: &str) -> Url {
    let mut url = base.clone();
    if !suffix.is_empty() {
        let path = format!("{}/{suffix}", base.path().trim_end_matches('/'));
        url.set_path(&path);
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_follow_the_healthchecks_convention() {
        let base: Url = "https://hc-ping.com/abc-123".parse().unwrap();
        assert_eq!(with_suffix(&base, "start").as_str(), "https://hc-ping.com/abc-123/start");
        assert_eq!(with_suffix(&base, "fail").as_str(), "https://hc-ping.com/abc-123/fail");
        assert_eq!(with_suffix(&base, "").as_str(), "https://hc-ping.com/abc-123");
        let slash: Url = "https://hc-ping.com/abc-123/".parse().unwrap();
        assert_eq!(with_suffix(&slash, "start").as_str(), "https://hc-ping.com/abc-123/start");
    }
}
