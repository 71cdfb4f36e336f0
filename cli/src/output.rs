//! How results reach the user: human text on a terminal, JSON for scripts, always on stdout;
//! logs and prompts go to stderr.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
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
    /// `-q`: no progress bars, only errors on stderr.
    pub quiet: bool,
    /// The width tables are fitted to: the terminal's, unless stdout is not a terminal or
    /// `--wide` asks for full lines.
    pub width: Option<usize>,
}

/// `-q` and `--wide` of this invocation, set once by the command dispatcher (so every
/// [`Output::detect`] sees them without each command passing them on).
static QUIET: AtomicBool = AtomicBool::new(false);
static WIDE: AtomicBool = AtomicBool::new(false);
/// Whether a JSON document went to stdout: an error then is not printed as a second one.
static JSON_WRITTEN: AtomicBool = AtomicBool::new(false);

/// Whether stdout's reader went away (a broken pipe) while a command wrote to it.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Remembers a broken pipe on stdout, for errors that reach `main` only as text (a sink's write
/// failure inside a sync report).
pub fn note_write_error(e: &std::io::Error) {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
    }
}

/// Whether stdout's reader has gone: then there is nobody to tell, and the run ends with exit 0.
pub fn stdout_closed() -> bool {
    STDOUT_CLOSED.load(Ordering::Relaxed)
}

/// Records the global `-q` and `--wide`.
pub fn set_globals(quiet: bool, wide: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
    WIDE.store(wide, Ordering::Relaxed);
}

impl Output {
    /// Preferences for this process's streams.
    pub fn detect(json: bool) -> Self {
        let stdout_tty = std::io::stdout().is_terminal();
        let width = (stdout_tty && !WIDE.load(Ordering::Relaxed))
            .then(|| terminal_size::terminal_size().map(|(w, _)| usize::from(w.0)))
            .flatten();
        Self {
            json,
            stdout_tty,
            stderr_tty: std::io::stderr().is_terminal(),
            quiet: QUIET.load(Ordering::Relaxed),
            width,
        }
    }

    /// Writes `table` fitted to [`Output::width`] (see [`fit_lines`]).
    pub fn table(&self, table: &str) -> std::io::Result<()> {
        match self.width {
            Some(width) => self.line(fit_lines(table, width)),
            None => self.line(table),
        }
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
        JSON_WRITTEN.store(true, Ordering::Relaxed);
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

/// Writes raw bytes to stdout (generated scripts and pages); a closed pipe is an error the
/// caller returns, which `main` turns into exit code 0.
pub fn write_stdout(bytes: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()
}

/// Cuts every line of `text` longer than `width` characters, ending it with `…`, so a table's
/// rows stay one line each on a narrow terminal (`--wide` prints them whole). Every table's last
/// column is its free text (a status, a position, a value), so cutting the line cuts that cell.
pub fn fit_lines(text: &str, width: usize) -> String {
    let width = width.max(20);
    text.lines()
        .map(|line| {
            if line.chars().count() <= width {
                line.to_owned()
            } else {
                let mut cut: String = line.chars().take(width - 1).collect();
                cut.push('…');
                cut
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The `kind` of an exit code in a JSON error.
pub fn error_kind(code: u8) -> &'static str {
    match code {
        crate::exit::USAGE => "usage",
        crate::exit::CONFIG => "config",
        crate::exit::CONSENT => "consent",
        crate::exit::THROTTLED => "throttled",
        crate::exit::BUSY => "busy",
        _ => "failure",
    }
}

/// The JSON form of an error (`--json`): `{"error": {"code", "kind", "message"}}`, where `code`
/// is the exit code and `message` the error with its causes, as stderr shows it.
pub fn error_json(code: u8, message: &str) -> serde_json::Value {
    serde_json::json!({"error": {"code": code, "kind": error_kind(code), "message": message}})
}

/// Under `--json`, prints the error as JSON on stdout, unless the command already printed its
/// own JSON document (one document per run). A closed stdout is ignored.
pub fn print_json_error(code: u8, message: &str) {
    if JSON_WRITTEN.load(Ordering::Relaxed) {
        return;
    }
    let _ = Output::detect(true).json_value(&error_json(code, message));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_cut_to_the_width_with_an_ellipsis() {
        let table = "short\nabcdefghijklmnopqrstuvwxyz0123456789";
        assert_eq!(fit_lines(table, 25), "short\nabcdefghijklmnopqrstuvwx…");
        assert_eq!(fit_lines(table, 80), table);
    }

    #[test]
    fn errors_in_json_carry_the_exit_code_and_its_kind() {
        let v = error_json(3, "missing setting");
        assert_eq!(v, serde_json::json!({"error": {"code": 3, "kind": "config", "message": "missing setting"}}));
        assert_eq!(error_kind(1), "failure");
        assert_eq!(error_kind(2), "usage");
    }
}
