//! Pure: writing hostile strings into HTML, and telling a page this tool wrote from any other
//! file. Nothing here does I/O.

use crate::profile::formats::escape;

/// The marker every report carries in its `<head>`: only a file with it is ever replaced.
pub const GENERATOR: &str = "<meta name=\"generator\" content=\"seccomp-tracer report\">";

/// How far into a file the marker is looked for.
pub const MARKER_WITHIN: usize = 4096;

/// `s` as HTML text or a quoted attribute value: control and invisible characters written
/// `\u{..}` (as on a terminal), then `& < > " '` as entities. Everything from a profile, a
/// provenance file or the daemon goes through this.
pub fn text(s: &str) -> String {
    let s = escape(s);
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Whether `head` (a file's first bytes) is a report this tool wrote.
pub fn is_report(head: &[u8]) -> bool {
    let head = &head[..head.len().min(MARKER_WITHIN)];
    head.windows(GENERATOR.len())
        .any(|w| w == GENERATOR.as_bytes())
}

/// `s` as one shell word: as it is when it needs no quoting, else in single quotes.
pub fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+:=@%,".contains(&b));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_strings_become_inert_text() {
        assert_eq!(
            text("<script>alert('x')</script>"),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"
        );
        assert_eq!(text("a\"b&c"), "a&quot;b&amp;c");
        assert_eq!(text("\u{1b}[2J\u{202e}"), "\\u{1b}[2J\\u{202e}");
        assert_eq!(text("plain_name"), "plain_name");
    }

    #[test]
    fn only_a_page_with_the_marker_near_its_start_is_ours() {
        let page = format!("<!DOCTYPE html><html><head>{GENERATOR}</head></html>");
        assert!(is_report(page.as_bytes()));
        assert!(!is_report(b"<!DOCTYPE html><html><head></head></html>"));
        assert!(!is_report(b"{\"defaultAction\": \"SCMP_ACT_ERRNO\"}"));
        let late = format!("{}{GENERATOR}", " ".repeat(MARKER_WITHIN));
        assert!(!is_report(late.as_bytes()));
    }

    #[test]
    fn shell_words_are_quoted_when_they_must_be() {
        assert_eq!(shell_word("/srv/web.json"), "/srv/web.json");
        assert_eq!(shell_word("/my dir/web.json"), "'/my dir/web.json'");
        assert_eq!(shell_word("it's"), "'it'\\''s'");
        assert_eq!(shell_word("$(reboot)"), "'$(reboot)'");
        assert_eq!(shell_word(""), "''");
    }
}
