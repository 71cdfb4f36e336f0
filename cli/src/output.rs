//! How results reach the user: human text on a terminal, JSON for scripts, always on stdout;
//! logs and prompts go to stderr.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Output preferences for one invocation.
#[derive(Debug, Clone, Copy, Default)]
pub struct Output {
    /// `--json`: machine-readable output on stdout.
    pub json: bool,
    /// Whether stdout is a terminal.
    pub stdout_tty: bool,
    /// Whether stderr is a terminal.
    pub stderr_tty: bool,
}

impl Output {
    /// Preferences for this process's streams.
    pub fn detect(json: bool) -> Self {
        Self { json, stdout_tty: std::io::stdout().is_terminal(), stderr_tty: std::io::stderr().is_terminal() }
    }

    /// Writes one line to stdout. A closed pipe surfaces as an error the caller returns, and
    /// `main` turns it into exit code 0.
    pub fn line(&self, text: impl std::fmt::Display) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{text}")?;
        out.flush()
    }

    /// Writes a JSON value to stdout: pretty on a terminal, one line otherwise.
    pub fn json_value(&self, value: &serde_json::Value) -> std::io::Result<()> {
        let text = if self.stdout_tty {
            serde_json::to_string_pretty(value).map_err(std::io::Error::other)?
        } else {
            value.to_string()
        };
        self.line(text)
    }

    /// A note for the person at the terminal (stderr), e.g. progress or hints.
    pub fn note(&self, text: impl std::fmt::Display) {
        let _ = writeln!(std::io::stderr().lock(), "{text}");
    }
}

/// An instant as RFC 3339 (UTC, whole seconds).
pub fn timestamp(at: OffsetDateTime) -> String {
    at.replace_nanosecond(0).unwrap_or(at).format(&Rfc3339).unwrap_or_else(|_| at.to_string())
}

/// An optional instant, or `never`.
pub fn timestamp_or_never(at: Option<OffsetDateTime>) -> String {
    at.map(timestamp).unwrap_or_else(|| "never".into())
}

/// "in 3 days", "in 2h 05m", "5m 10s ago".
pub fn relative(at: OffsetDateTime, now: OffsetDateTime) -> String {
    let delta = at - now;
    let abs = delta.unsigned_abs();
    let text = coarse(abs);
    if delta.is_negative() { format!("{text} ago") } else { format!("in {text}") }
}

/// "1h 02m 03s", "4m 05s", "6s": exact to the second (run reports).
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m {s:02}s"),
        (h, m, s) => format!("{h}h {m:02}m {s:02}s"),
    }
}

/// A duration in the largest sensible unit: "364 days", "2h 05m", "40s".
pub fn coarse(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 2 * 86_400 {
        format!("{} days", s / 86_400)
    } else if s >= 3600 {
        format!("{}h {:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}
