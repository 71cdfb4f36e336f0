//! Server-controlled text made safe for a terminal or a log line.
//!
//! Error messages quote what servers say (`error_description`, SKY API messages, the start of an
//! HTML error page). A hostile or compromised server could put terminal escapes there: ANSI
//! sequences that rewrite the screen, set the window title, hide text, or write to the
//! clipboard (OSC 52). [`server_text`] is applied where server text enters an error.

/// The longest server text kept, in characters; the rest is cut with `…`.
pub const MAX_CHARS: usize = 500;

/// `text` without ANSI escape sequences, control characters (C0, DEL, C1) or bidirectional
/// overrides; line breaks and tabs become spaces; at most [`MAX_CHARS`] characters.
pub fn server_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_CHARS * 4));
    let mut chars = text.chars().peekable();
    let mut kept = 0;
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => skip_escape(&mut chars),
            // C1 CSI and OSC introducers: the rest of the sequence goes too.
            '\u{9b}' => skip_csi(&mut chars),
            '\u{9d}' => skip_osc(&mut chars),
            '\n' | '\r' | '\t' => push(&mut out, &mut kept, ' '),
            c if c.is_control() || is_bidi_control(c) => {}
            c => push(&mut out, &mut kept, c),
        }
        if kept > MAX_CHARS {
            out.pop();
            out.push('…');
            break;
        }
    }
    out
}

fn push(out: &mut String, kept: &mut usize, c: char) {
    out.push(c);
    *kept += 1;
}

/// Unicode bidirectional embeddings, overrides and isolates: they reorder what is displayed.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{61c}')
}

type Chars<'a> = std::iter::Peekable<std::str::Chars<'a>>;

/// After ESC: CSI (`ESC [`), OSC (`ESC ]`), string commands (`ESC P`, `ESC X`, `ESC ^`, `ESC _`)
/// or a two-character escape.
fn skip_escape(chars: &mut Chars<'_>) {
    match chars.next() {
        Some('[') => skip_csi(chars),
        Some(']' | 'P' | 'X' | '^' | '_') => skip_osc(chars),
        _ => {}
    }
}

/// Parameters and intermediates up to the final byte (`@` to `~`).
fn skip_csi(chars: &mut Chars<'_>) {
    for c in chars.by_ref() {
        if ('@'..='~').contains(&c) {
            return;
        }
    }
}

/// Up to BEL, ST (`ESC \`) or the C1 ST.
fn skip_osc(chars: &mut Chars<'_>) {
    while let Some(c) = chars.next() {
        match c {
            '\u{7}' | '\u{9c}' => return,
            '\u{1b}' => {
                if chars.peek() == Some(&'\\') {
                    chars.next();
                }
                return;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_controls_are_removed() {
        let cases = [
            ("plain text", "plain text"),
            ("\u{1b}[31mred\u{1b}[0m", "red"),
            ("\u{1b}[2J\u{1b}[Hcleared", "cleared"),
            ("title\u{1b}]0;pwned\u{7} after", "title after"),
            ("clip\u{1b}]52;c;ZXZpbA==\u{1b}\\board", "clipboard"),
            ("c1\u{9b}31mcsi", "c1csi"),
            ("bell\u{7}nul\u{0}del\u{7f}", "bellnuldel"),
            ("two\nlines\r\tand tab", "two lines  and tab"),
            ("bidi \u{202e}txt.exe", "bidi txt.exe"),
            ("dangling \u{1b}[", "dangling "),
            ("café ✓", "café ✓"),
        ];
        for (input, want) in cases {
            assert_eq!(server_text(input), want, "{input:?}");
        }
    }

    #[test]
    fn long_text_is_cut() {
        let long = "x".repeat(10_000);
        let cut = server_text(&long);
        assert_eq!(cut.chars().count(), MAX_CHARS + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(server_text(&"y".repeat(MAX_CHARS)), "y".repeat(MAX_CHARS));
    }
}
