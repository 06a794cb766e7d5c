//! Text from outside (names and command lines in /proc) made safe to print, and measured in
//! terminal columns. A process names itself: its comm (prctl(PR_SET_NAME), /proc/self/comm)
//! and its arguments may hold escape sequences, newlines or bidi overrides. [`printable`] is
//! the one place such bytes are made fit for a terminal or a log line.

mod tables;

/// `bytes` as text that is safe to print: each control character (C0, DEL, C1), format
/// character (Unicode category Cf: bidi controls, zero-width spaces and joiners, …), line or
/// paragraph separator, and each byte that is not part of valid UTF-8 becomes `?`; everything
/// else is kept. The result drives no terminal, forges no log line and cannot reorder the text
/// that follows it.
pub fn printable(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.extend(chunk.valid().chars().map(|c| if hidden(c) { '?' } else { c }));
        out.extend(chunk.invalid().iter().map(|_| '?'));
    }
    out
}

/// The characters [`printable`] replaces: control (Cc), format (Cf, as of Unicode 16), line
/// separator (Zl) and paragraph separator (Zp).
fn hidden(c: char) -> bool {
    let c = u32::from(c);
    // Below U+00AD (the first format character) only the controls.
    if c < 0xad {
        c < 0x20 || (0x7f..0xa0).contains(&c)
    } else {
        HIDDEN.iter().any(|&(first, last)| (first..=last).contains(&c))
    }
}

/// Unicode's format characters (Cf), with U+2028 and U+2029 (Zl, Zp) joined to the bidi
/// embeddings after them: inclusive ranges.
const HIDDEN: [(u32, u32); 21] = [
    (0xad, 0xad),
    (0x600, 0x605),
    (0x61c, 0x61c),
    (0x6dd, 0x6dd),
    (0x70f, 0x70f),
    (0x890, 0x891),
    (0x8e2, 0x8e2),
    (0x180e, 0x180e),
    (0x200b, 0x200f),
    (0x2028, 0x202e),
    (0x2060, 0x2064),
    (0x2066, 0x206f),
    (0xfeff, 0xfeff),
    (0xfff9, 0xfffb),
    (0x110bd, 0x110bd),
    (0x110cd, 0x110cd),
    (0x13430, 0x1343f),
    (0x1bca0, 0x1bca3),
    (0x1d173, 0x1d17a),
    (0xe0001, 0xe0001),
    (0xe0020, 0xe007f),
];

/// The columns `c` takes on a terminal, as the `unicode-width` crate counts them (Unicode 16):
/// 2 for East Asian wide and fullwidth characters, 0 for combining and other zero-width ones,
/// else 1 (also for a control character: [`printable`] shows it as `?`).
pub fn columns(c: char) -> usize {
    let c = u32::from(c);
    // Below U+00AD (a zero-width soft hyphen) every character takes one column.
    if c < 0xad {
        1
    } else if within(&tables::ZERO, c) {
        0
    } else if within(&tables::WIDE, c) || matches!(c, 0x20000..=0x2fffd | 0x30000..=0x3fffd) {
        2
    } else if c == 0x17d8 {
        // KHMER SIGN BEUYYAL, written as three characters.
        3
    } else {
        1
    }
}

/// Whether `c` is in one of `table`'s ranges (each `first << 11 | (last - first)`, sorted).
fn within(table: &[u32], c: u32) -> bool {
    let i = table.partition_point(|&r| r >> 11 <= c);
    table.get(i.wrapping_sub(1)).is_some_and(|&r| c - (r >> 11) <= r & 0x7ff)
}

/// The columns `s` takes on a terminal.
pub fn width(s: &str) -> usize {
    s.chars().map(columns).sum()
}

/// The longest start of `s` that fits in `cols` columns. A wide character that would cross the
/// limit is left out whole, never split.
pub fn fit(s: &str, cols: usize) -> &str {
    let mut used = 0;
    for (i, c) in s.char_indices() {
        used += columns(c);
        if used > cols {
            return &s[..i];
        }
    }
    s
}

/// A decimal number (by hand: each integer type's `parse` costs binary size).
pub fn number(s: &str) -> Option<u64> {
    let digit = |b: u8| Some(b.wrapping_sub(b'0')).filter(|d| *d < 10);
    s.bytes().try_fold(None, |n: Option<u64>, b| {
        Some(n.unwrap_or(0).checked_mul(10)?.checked_add(digit(b)?.into()))
    })?
}

#[cfg(test)]
mod tests {
    use super::*;
    use unicode_width::UnicodeWidthChar;

    #[test]
    fn controls_become_question_marks_one_per_character() {
        for c in (0..0x20).chain(0x7f..0xa0).filter_map(char::from_u32) {
            assert_eq!(printable(c.to_string().as_bytes()), "?", "U+{:04X}", u32::from(c));
        }
        assert_eq!(printable(b"a\x1b[2J\x07\nreaper: ERROR x\r\t\0b"), "a?[2J??reaper: ERROR x???b");
        // C1 CSI (U+009B), two bytes in UTF-8: one `?`.
        assert_eq!(printable("x\u{9b}31my".as_bytes()), "x?31my");
        assert_eq!(printable(b" ~"), " ~");
        assert_eq!(printable(b""), "");
    }

    #[test]
    fn bidi_and_other_format_characters_become_question_marks() {
        let evil = "a\u{202e}b\u{2066}c\u{2069}d\u{200e}\u{200f}\u{200b}\u{200d}\u{feff}\u{61c}\u{2028}\u{2029}\u{e0041}\u{ad}e";
        assert_eq!(printable(evil.as_bytes()), "a?b?c?d??????????e");
        // Each range: its ends are replaced, the characters beside them kept (unless they are
        // replaced themselves).
        for &(first, last) in &HIDDEN {
            for c in [first, last] {
                let c = char::from_u32(c).unwrap();
                assert_eq!(printable(c.to_string().as_bytes()), "?", "U+{:04X}", u32::from(c));
            }
            for c in [first - 1, last + 1] {
                let c = char::from_u32(c).unwrap();
                if !HIDDEN.iter().any(|&(f, l)| (f..=l).contains(&u32::from(c))) {
                    assert_eq!(printable(c.to_string().as_bytes()), c.to_string(), "U+{:04X}", u32::from(c));
                }
            }
        }
    }

    #[test]
    fn invalid_utf8_becomes_one_question_mark_per_byte() {
        assert_eq!(printable(b"\xff"), "?");
        // A truncated character (the kernel cuts a comm at 15 bytes), an overlong encoding, a
        // surrogate.
        assert_eq!(printable(b"ab\xe4\xb8"), "ab??");
        assert_eq!(printable(b"\xc0\xafx"), "??x");
        assert_eq!(printable(b"\xed\xa0\x80"), "???");
        assert_eq!(printable(b"\xe4\xb8\xad\xff\xe6\x96\x87"), "中?文");
    }

    #[test]
    fn printable_text_is_kept() {
        let fine = "sleep 1000 -- ünïcödé 中文 한국어 e\u{301} 🦀 \u{a0}\u{ae}\u{17d8}";
        assert_eq!(printable(fine.as_bytes()), fine);
    }

    #[test]
    fn columns_agree_with_unicode_width_for_every_character() {
        for c in (0..=0x10ffff).filter_map(char::from_u32) {
            // unicode-width gives controls no width; printable shows them as `?`.
            assert_eq!(columns(c), c.width().unwrap_or(1), "U+{:04X}", u32::from(c));
        }
    }

    #[test]
    fn columns_of_some_characters() {
        let cols = |s: &str| s.chars().map(columns).collect::<Vec<_>>();
        assert_eq!(
            cols(
                "a\u{ac}\u{ad}\u{300}中\u{ff21}한\u{1160}🦀\u{20000}\u{2fffd}\u{2fffe}\u{30000}\u{3fffd}\u{3fffe}\u{17d8}"
            ),
            [1, 1, 0, 0, 2, 2, 2, 0, 2, 2, 2, 1, 2, 2, 1, 3]
        );
        assert_eq!(width("a中e\u{301}"), 4);
        assert_eq!(width(""), 0);
    }

    #[test]
    fn fit_never_splits_a_wide_character() {
        assert_eq!(fit("abc", 0), "");
        assert_eq!(fit("abc", 2), "ab");
        assert_eq!(fit("abc", 3), "abc");
        assert_eq!(fit("abc", 99), "abc");
        assert_eq!(fit("中文字", 1), "");
        assert_eq!(fit("中文字", 4), "中文");
        assert_eq!(fit("中文字", 5), "中文");
        assert_eq!(fit("中文字", 6), "中文字");
        assert_eq!(fit("a中", 2), "a");
        // A combining mark stays with its letter.
        assert_eq!(fit("e\u{301}x", 1), "e\u{301}");
    }

    /// `cargo test --lib -- --ignored regenerate_width_tables` rewrites src/text/tables.rs from
    /// the unicode-width crate (a dev-dependency): run it after updating that crate.
    #[test]
    #[ignore = "writes src/text/tables.rs"]
    fn regenerate_width_tables() {
        let (mut zero, mut wide) = (Vec::new(), Vec::new());
        for c in (0..=0x10ffff).filter_map(char::from_u32) {
            let n = u32::from(c);
            let table: &mut Vec<(u32, u32)> = match c.width() {
                Some(0) => &mut zero,
                Some(2) if !matches!(n, 0x20000..=0x2fffd | 0x30000..=0x3fffd) => &mut wide,
                _ => continue,
            };
            match table.last_mut() {
                Some((_, last)) if *last + 1 == n => *last = n,
                _ => table.push((n, n)),
            }
        }
        let source = |name: &str, what: &str, ranges: &[(u32, u32)]| {
            let mut entries = Vec::new();
            for &(mut first, last) in ranges {
                while last - first > 0x7ff {
                    entries.push(format!("r(0x{first:x}, 0x{:x})", first + 0x7ff));
                    first += 0x800;
                }
                entries.push(format!("r(0x{first:x}, 0x{last:x})"));
            }
            let lines: Vec<String> = entries.chunks(5).map(|c| format!("    {},\n", c.join(", "))).collect();
            format!(
                "/// {what}\n#[rustfmt::skip]\npub const {name}: [u32; {}] = [\n{}];\n",
                entries.len(),
                lines.concat()
            )
        };
        let text = format!(
            "//! Generated by `cargo test --lib -- --ignored regenerate_width_tables` from unicode-width \
             {}:\n//! do not edit. Inclusive ranges of characters, each packed into a u32 by [`r`].\n\n\
             /// `first..=last` as `first << 11 | (last - first)`: at most 2,048 characters.\n\
             const fn r(first: u32, last: u32) -> u32 {{\n    assert!(last - first <= 0x7ff);\n    \
             first << 11 | (last - first)\n}}\n\n{}\n{}",
            UNICODE_WIDTH,
            source("ZERO", "Characters of no width: combining marks, zero-width format characters, …", &zero),
            source(
                "WIDE",
                "Characters two columns wide, but for planes 2 and 3 (wide throughout, left to code).",
                &wide
            ),
        );
        std::fs::write(concat!(env!("CARGO_MANIFEST_DIR"), "/src/text/tables.rs"), text).unwrap();
    }

    /// The version in Cargo.toml's dev-dependencies.
    const UNICODE_WIDTH: &str = "0.2.3 (Unicode 16)";
}
