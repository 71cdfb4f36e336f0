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

/// A fixed column of a [`free_text_table`]: its header, its width at full size, and whether its
/// cells are right-aligned (numbers).
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// The header.
    pub header: &'static str,
    /// The width at full size (a longer cell widens its line, as `format!` does).
    pub width: usize,
    /// Right-aligned (numbers).
    pub right: bool,
}

/// Room the free text needs beside the fixed columns before it moves below them.
const FREE_TEXT_MIN: usize = 10;

/// A table of `columns` and then a free-text last column headed `last` (two spaces before it),
/// one line per row at full size (`width` None: a pipe or `--wide`, or every line fits).
/// Otherwise the fixed columns shrink to their widest cell and the free text wraps at word
/// boundaries in its column; on a terminal too narrow even for that, the fixed columns are cut
/// ([`fit_lines`]) and the free text wraps on the lines below its row. The free text (a status,
/// an error) is never cut.
pub fn free_text_table(columns: &[Column], last: &str, rows: &[(Vec<String>, String)], width: Option<usize>) -> String {
    let lay = |widths: &[usize], cells: &[String]| -> String {
        let mut line = String::new();
        for (i, (column, cell)) in columns.iter().zip(cells).enumerate() {
            if i > 0 {
                line.push(' ');
            }
            let w = widths[i];
            line += &if column.right { format!("{cell:>w$}") } else { format!("{cell:<w$}") };
        }
        line
    };
    let headers: Vec<String> = columns.iter().map(|c| c.header.to_owned()).collect();
    let full_widths: Vec<usize> = columns.iter().map(|c| c.width).collect();
    let full: Vec<String> = std::iter::once(format!("{}  {last}", lay(&full_widths, &headers)))
        .chain(rows.iter().map(|(cells, text)| format!("{}  {text}", lay(&full_widths, cells))))
        .collect();
    let Some(width) = width.map(|w| w.max(20)) else { return full.join("\n") };
    if full.iter().all(|l| l.chars().count() <= width) {
        return full.join("\n");
    }
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| rows.iter().map(|(cells, _)| cells[i].chars().count()).fold(c.header.chars().count(), usize::max))
        .collect();
    let start = widths.iter().sum::<usize>() + columns.len() - 1 + 2;
    let mut out = Vec::new();
    if width >= start + FREE_TEXT_MIN {
        let indent = " ".repeat(start);
        out.push(format!("{}  {last}", lay(&widths, &headers)));
        for (cells, text) in rows {
            let mut pieces = wrap_words(text, width - start, width - start).into_iter();
            out.push(format!("{}  {}", lay(&widths, cells), pieces.next().unwrap_or_default()));
            out.extend(pieces.map(|p| format!("{indent}{p}")));
        }
    } else {
        const INDENT: &str = "    ";
        out.push(fit_lines(lay(&widths, &headers).trim_end(), width));
        for (cells, text) in rows {
            out.push(fit_lines(lay(&widths, cells).trim_end(), width));
            out.extend(
                wrap_words(text, width - INDENT.len(), width - INDENT.len())
                    .into_iter()
                    .map(|p| format!("{INDENT}{p}")),
            );
        }
    }
    out.join("\n")
}

/// Wraps each line of `text` longer than `width` (None: no limit) at spaces, continuing it
/// indented by two; a word longer than a line is split.
pub fn wrap_lines(text: &str, width: Option<usize>) -> String {
    let Some(width) = width.map(|w| w.max(20)) else { return text.to_owned() };
    let mut out = Vec::new();
    for line in text.lines() {
        for (i, piece) in wrap_words(line, width, width - 2).into_iter().enumerate() {
            out.push(if i == 0 { piece } else { format!("  {piece}") });
        }
    }
    out.join("\n")
}

/// `text` in pieces of at most `first` characters (the first) and `rest` (the others), broken at
/// spaces; a word longer than a piece is split.
fn wrap_words(text: &str, first: usize, rest: usize) -> Vec<String> {
    let mut pieces: Vec<String> = Vec::new();
    let mut piece = String::new();
    let limit = |pieces: &Vec<String>| if pieces.is_empty() { first } else { rest }.max(1);
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let mut word: Vec<char> = word.chars().collect();
        let len = piece.chars().count();
        if len > 0 && len + 1 + word.len() <= limit(&pieces) {
            piece.push(' ');
            piece.extend(&word);
            continue;
        }
        if len > 0 {
            pieces.push(std::mem::take(&mut piece));
        }
        while word.len() > limit(&pieces) {
            let n = limit(&pieces);
            pieces.push(word.drain(..n).collect());
        }
        piece = word.into_iter().collect();
    }
    if !piece.is_empty() || pieces.is_empty() {
        pieces.push(piece);
    }
    pieces
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

    const COLUMNS: [Column; 2] =
        [Column { header: "entity", width: 18, right: false }, Column { header: "added", width: 9, right: true }];

    fn rows() -> Vec<(Vec<String>, String)> {
        vec![
            (vec!["gifts".into(), "40".into()], "ok, reconciled".into()),
            (vec!["constituents".into(), "7".into()], "FAILED: the server said no to page 3".into()),
        ]
    }

    #[test]
    fn a_free_text_table_is_whole_where_it_fits_and_wraps_its_last_column_where_not() {
        let full = "entity                 added  status\n\
                    gifts                     40  ok, reconciled\n\
                    constituents               7  FAILED: the server said no to page 3";
        assert_eq!(free_text_table(&COLUMNS, "status", &rows(), None), full);
        assert_eq!(free_text_table(&COLUMNS, "status", &rows(), Some(66)), full, "fits: as it is");
        let narrow = [
            "entity       added  status",
            "gifts           40  ok, reconciled",
            "constituents     7  FAILED: the server",
            &format!("{}said no to page 3", " ".repeat(20)),
        ];
        assert_eq!(free_text_table(&COLUMNS, "status", &rows(), Some(38)), narrow.join("\n"));
        let tiny = [
            "entity       added",
            "gifts           40",
            "    ok, reconciled",
            "constituents     7",
            "    FAILED: the",
            "    server said no",
            "    to page 3",
        ];
        assert_eq!(free_text_table(&COLUMNS, "status", &rows(), Some(20)), tiny.join("\n"));
    }

    #[test]
    fn long_lines_wrap_at_spaces_and_long_words_split() {
        assert_eq!(wrap_lines("short\none two three four five six", Some(20)), "short\none two three four\n  five six");
        assert_eq!(
            wrap_lines("a /a/very/long/path/that/does/not/fit/anywhere", Some(20)),
            "a\n  /a/very/long/path/\n  that/does/not/fit/\n  anywhere"
        );
        assert_eq!(wrap_lines("one two", None), "one two");
    }

    #[test]
    fn errors_in_json_carry_the_exit_code_and_its_kind() {
        let v = error_json(3, "missing setting");
        assert_eq!(v, serde_json::json!({"error": {"code": 3, "kind": "config", "message": "missing setting"}}));
        assert_eq!(error_kind(1), "failure");
        assert_eq!(error_kind(2), "usage");
    }
}
