//! Text a guest supplies — error messages, file names, warnings, log lines, stderr, and the trap text
//! wasmtime builds from the component's own name section — before the host keeps, prints or forwards
//! it (terminals, the log, the sync report sent to the server).
//!
//! Two rules, applied at the boundary so that nothing downstream has to remember them: a cap on length
//! (a guest must not make the host hold or ship megabytes of text), and control characters written as
//! escapes (a guest must not retitle a terminal, clear it, move the cursor to print a fake success
//! line, or reorder text with bidirectional overrides).

use crate::bindings::renderer::exports::tether::plugin::render;
use crate::bindings::types;
use std::fmt::Write as _;

/// Longest message kept from a guest: error messages, warnings, log lines.
pub(crate) const MESSAGE_CAP: usize = 4096;
/// Longest file name kept from a guest (a location's `file`).
pub(crate) const PATH_CAP: usize = 1024;
/// Longest trap text (wasmtime's message, with the guest's function names in its backtrace).
pub(crate) const TRAP_TEXT_CAP: usize = 8192;
/// Longest stderr kept with a trap: what the capture keeps of it anyway.
pub(crate) const STDERR_CAP: usize = crate::output::GUEST_OUTPUT_CAP;

/// `text` cut to at most `cap` bytes (on a character boundary, marked), with every control and
/// bidirectional-formatting character escaped (`\u{1b}`). Newlines are escaped too: one guest string
/// is one line wherever the host prints it.
pub(crate) fn guest_text(text: &str, cap: usize) -> String {
    let mut out = String::with_capacity(text.len().min(cap) + 16);
    for c in text.chars() {
        if out.len() >= cap {
            let _ = write!(out, "… ({} bytes in all, truncated)", text.len());
            return out;
        }
        if needs_escape(c) {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// A multi-line guest text (stderr): its last `cap` bytes, the same rules per line, lines kept.
pub(crate) fn guest_lines(text: &str, cap: usize) -> String {
    let tail_start = text.len().saturating_sub(cap);
    let start = (tail_start..=text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    text[start..]
        .lines()
        .map(|line| guest_text(line, MESSAGE_CAP))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A renderer's output with its text made safe: warnings, and the file of every location. (Manifests
/// are data, checked as objects; their size is `limits.output`.)
pub(crate) fn guest_output(mut output: render::Output) -> render::Output {
    let location = |location: &mut Option<types::Location>| {
        if let Some(location) = location {
            location.file = guest_text(&location.file, PATH_CAP);
        }
    };
    for object in &mut output.objects {
        location(&mut object.origin);
    }
    for warning in &mut output.warnings {
        warning.message = guest_text(&warning.message, MESSAGE_CAP);
        location(&mut warning.location);
    }
    output
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c,
            // Bidirectional embeddings, overrides and isolates ("Trojan Source").
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
            // Line and paragraph separators end a line on some terminals.
            | '\u{2028}' | '\u{2029}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_are_written_out_not_passed_through() {
        let hostile = "ok\u{1b}]0;pwned\u{7}\u{1b}[2J\r\n\u{202e}txt.exe";
        let shown = guest_text(hostile, MESSAGE_CAP);
        assert!(!shown.chars().any(needs_escape), "{shown}");
        assert_eq!(
            shown,
            "ok\\u{1b}]0;pwned\\u{7}\\u{1b}[2J\\u{d}\\u{a}\\u{202e}txt.exe"
        );
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary_and_says_so() {
        let long = "é".repeat(10_000);
        let shown = guest_text(&long, 100);
        assert!(shown.len() < 200, "{}", shown.len());
        assert!(
            shown.ends_with("(20000 bytes in all, truncated)"),
            "{shown}"
        );
    }

    #[test]
    fn stderr_keeps_its_last_lines_escaped() {
        let stderr = format!("{}\nlast \u{1b}[31mred\n", "x".repeat(100_000));
        let kept = guest_lines(&stderr, 1000);
        assert!(kept.len() <= 1100, "{}", kept.len());
        assert!(kept.ends_with("last \\u{1b}[31mred"), "{kept}");
    }
}
