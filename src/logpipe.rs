//! Per-process log lines (`--prefix-output`), the pure part: no syscalls, no clock.
//!
//! A [`Framer`] per (command, stream) turns the bytes a command wrote into whole lines, each
//! with the command's name as prefix, each at most [`PIPE_BUF`] bytes with its prefix and
//! newline, so that one write(2) of a line is atomic on a pipe and no two lines can tear into
//! each other. The command's bytes are never altered: only the prefix is reaper's.
//!
//! - A line `text\n` leaves as `NAME | text\n`.
//! - A line longer than the cap is split into pieces; the first piece has the usual `NAME | `
//!   prefix, every following piece of the same line has `NAME + ` instead (`+`: "continues the
//!   previous line of NAME on this stream"). Joining a `+` piece's text to the previous piece
//!   (without its newline) gives back the original line exactly. A split never cuts a UTF-8
//!   sequence in two when the bytes are UTF-8.
//! - A last line without newline is flushed with a newline added (`finish`), when the command
//!   has exited.
//!
//! A [`Queue`] per destination (reaper's stdout, reaper's stderr) holds lines waiting for the
//! reader, up to [`QUEUE_BYTES`]. A line that does not fit is dropped whole and counted per
//! name; once room returns, `reaper | dropped N lines from NAME` enters the queue before any
//! later line.

use std::collections::VecDeque;

/// The largest write(2) to a pipe that Linux (and POSIX) make atomic.
pub const PIPE_BUF: usize = 4096;

/// How many bytes of lines a destination holds for a slow reader before it drops lines.
pub const QUEUE_BYTES: usize = 256 * 1024;

/// The longest name a prefix carries (the names `--name` accepts).
pub const NAME_MAX: usize = 32;

/// The prefix's name: only `[A-Za-z0-9._-]`, at most [`NAME_MAX`] bytes, never empty. Names
/// are validated where they are given; this keeps a prefix one safe, short token whatever
/// argv[0] was.
pub fn clean_name(name: &str) -> String {
    let clean: String =
        name.bytes()
            .take(NAME_MAX)
            .map(|b| {
                if b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-' { b as char } else { '_' }
            })
            .collect();
    if clean.is_empty() { "command".to_owned() } else { clean }
}

/// Splits one command's stream into prefixed lines.
#[derive(Debug, Clone)]
pub struct Framer {
    /// `NAME | `
    first: Vec<u8>,
    /// `NAME + `, as long as `first`.
    next: Vec<u8>,
    /// The current line's bytes that no newline has ended yet (never more than `max_text`).
    partial: Vec<u8>,
    /// The current line was split already: its next piece is a continuation.
    continued: bool,
}

impl Framer {
    pub fn new(name: &str) -> Framer {
        let name = clean_name(name);
        Framer {
            first: format!("{name} | ").into_bytes(),
            next: format!("{name} + ").into_bytes(),
            partial: Vec::new(),
            continued: false,
        }
    }

    /// The most text one output line carries: the cap less the prefix and the newline.
    fn max_text(&self) -> usize {
        PIPE_BUF - self.first.len() - 1
    }

    /// The most bytes of lines `n` input bytes can produce (`n` empty lines, each a prefix and
    /// a newline), plus the split piece a full partial line may add.
    pub fn worst_case(&self, n: usize) -> usize {
        n * (self.first.len() + 1) + PIPE_BUF
    }

    /// Bytes of the current line held until its newline comes.
    pub fn pending(&self) -> usize {
        self.partial.len()
    }

    /// Feeds what the command wrote; every line this completes goes to `out`.
    pub fn feed(&mut self, mut bytes: &[u8], out: &mut Vec<Vec<u8>>) {
        while !bytes.is_empty() {
            let room = self.max_text() - self.partial.len();
            match bytes.iter().position(|&b| b == b'\n') {
                Some(end) if end <= room => {
                    self.partial.extend_from_slice(&bytes[..end]);
                    out.push(self.line(self.partial.len()));
                    bytes = &bytes[end + 1..];
                }
                _ if bytes.len() <= room => {
                    self.partial.extend_from_slice(bytes);
                    return;
                }
                _ => {
                    self.partial.extend_from_slice(&bytes[..room]);
                    bytes = &bytes[room..];
                    // Not inside a UTF-8 sequence: if the next byte continues one, the piece
                    // ends before that sequence's first byte (when it is within 3 bytes).
                    let mut cut = self.partial.len();
                    if bytes.first().is_some_and(|&b| continuation(b)) {
                        let lead = (1..=3).map(|k| cut - k).find(|&i| !continuation(self.partial[i]));
                        if let Some(lead) = lead.filter(|&i| self.partial[i] >= 0xC0) {
                            cut = lead;
                        }
                    }
                    out.push(self.line(cut));
                    self.continued = true;
                }
            }
        }
    }

    /// The command is gone: its last line, if no newline ended it, leaves with one added.
    pub fn finish(&mut self, out: &mut Vec<Vec<u8>>) {
        if !self.partial.is_empty() {
            out.push(self.line(self.partial.len()));
        }
    }

    /// One output line: the prefix, `partial[..cut]` and a newline; what follows the cut stays.
    /// A piece cut without a newline (cut < partial.len() or a full partial) leaves `continued`
    /// to the caller; a line ended here resets it.
    fn line(&mut self, cut: usize) -> Vec<u8> {
        let prefix = if self.continued { &self.next } else { &self.first };
        let mut line = Vec::with_capacity(prefix.len() + cut + 1);
        line.extend_from_slice(prefix);
        line.extend_from_slice(&self.partial[..cut]);
        line.push(b'\n');
        self.partial.drain(..cut);
        self.continued = false;
        line
    }
}

fn continuation(b: u8) -> bool {
    b & 0xC0 == 0x80
}

/// Lines waiting for one destination, bounded; drops counted per name.
#[derive(Debug, Clone)]
pub struct Queue {
    lines: VecDeque<Vec<u8>>,
    /// Bytes in `lines`, written ones excepted.
    bytes: usize,
    cap: usize,
    /// Bytes of the front line already written (a write that took only part of it).
    written: usize,
    /// Lines dropped and not yet reported, per name, in the order of their first drop.
    dropped: Vec<(String, u64)>,
}

impl Default for Queue {
    fn default() -> Self {
        Queue::new(QUEUE_BYTES)
    }
}

impl Queue {
    pub fn new(cap: usize) -> Queue {
        Queue { lines: VecDeque::new(), bytes: 0, cap, written: 0, dropped: Vec::new() }
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Bytes that still fit.
    pub fn room(&self) -> usize {
        self.cap.saturating_sub(self.bytes)
    }

    /// The front line was written in part: its rest must come next wherever it goes.
    pub fn mid_line(&self) -> bool {
        self.written > 0
    }

    /// Lines waiting (a partly written one included).
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Lines dropped and not reported yet, all names together.
    pub fn unreported(&self) -> u64 {
        self.dropped.iter().map(|(_, n)| n).sum()
    }

    /// Queues `line` from `name`, or drops and counts it when it does not fit (or when an
    /// earlier drop could not be reported yet: a report always comes before later lines).
    pub fn push(&mut self, name: &str, line: Vec<u8>) -> bool {
        self.push_within(name, line, self.cap)
    }

    /// As `push`, with `limit` in place of the bound for this line (what an exited command
    /// left in its pipe is taken in beyond the bound, up to `limit`).
    pub fn push_within(&mut self, name: &str, line: Vec<u8>, limit: usize) -> bool {
        self.report_drops(limit);
        if !self.dropped.is_empty() || self.bytes + line.len() > limit {
            self.drop_lines(name, 1);
            return false;
        }
        self.bytes += line.len();
        self.lines.push_back(line);
        true
    }

    /// Counts `n` lines of `name` as dropped.
    pub fn drop_lines(&mut self, name: &str, n: u64) {
        match self.dropped.iter_mut().find(|(d, _)| d == name) {
            Some((_, count)) => *count += n,
            None => self.dropped.push((name.to_owned(), n)),
        }
    }

    /// Appends to `buf` the whole lines at the front that fit in `max` bytes together (the
    /// rest of a partly written line counts as one), at least one line (every line is at most
    /// `PIPE_BUF`). What `buf` gets is what one write(2) should try.
    pub fn fill(&self, max: usize, buf: &mut Vec<u8>) {
        let mut skip = self.written;
        for line in &self.lines {
            let rest = &line[skip..];
            skip = 0;
            if !buf.is_empty() && buf.len() + rest.len() > max {
                break;
            }
            buf.extend_from_slice(rest);
        }
    }

    /// `n` bytes from the front were written: whole lines leave, a partly written one stays
    /// with its written part marked. Then drop reports enter if they fit now.
    pub fn consume(&mut self, mut n: usize) {
        n = n.min(self.bytes);
        self.bytes -= n;
        while n > 0 {
            let Some(front) = self.lines.front() else { break };
            let rest = front.len() - self.written;
            if n < rest {
                self.written += n;
                break;
            }
            n -= rest;
            self.written = 0;
            self.lines.pop_front();
        }
        self.report_drops(self.cap);
    }

    /// Everything waiting is given up (nobody will read it): returns how many lines are lost,
    /// the waiting ones and the dropped ones not reported yet; the queue is empty after.
    pub fn abandon(&mut self) -> u64 {
        let lost = self.lines.len() as u64 + self.unreported();
        self.lines.clear();
        self.dropped.clear();
        self.bytes = 0;
        self.written = 0;
        lost
    }

    /// Each pending drop count becomes a line, in order, as long as it fits within `limit`.
    fn report_drops(&mut self, limit: usize) {
        while let Some((name, n)) = self.dropped.first() {
            let line = notice(name, *n);
            if self.bytes + line.len() > limit {
                return;
            }
            self.bytes += line.len();
            self.lines.push_back(line);
            self.dropped.remove(0);
        }
    }
}

/// `reaper | dropped N lines from NAME` with its newline.
pub fn notice(name: &str, n: u64) -> Vec<u8> {
    let lines = if n == 1 { "line" } else { "lines" };
    format!("reaper | dropped {n} {lines} from {name}\n").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(name: &str, chunks: &[&[u8]]) -> (Vec<Vec<u8>>, Framer) {
        let mut f = Framer::new(name);
        let mut out = Vec::new();
        for c in chunks {
            f.feed(c, &mut out);
        }
        (out, f)
    }

    fn strs(lines: &[Vec<u8>]) -> Vec<String> {
        lines.iter().map(|l| String::from_utf8_lossy(l).into_owned()).collect()
    }

    #[test]
    fn names_are_one_safe_token() {
        assert_eq!(clean_name("nginx"), "nginx");
        assert_eq!(clean_name("php-fpm8.2_x"), "php-fpm8.2_x");
        assert_eq!(clean_name("a b\n|c\0"), "a_b__c_");
        assert_eq!(clean_name(""), "command");
        assert_eq!(clean_name(&"x".repeat(40)), "x".repeat(32));
        assert_eq!(clean_name("é"), "__");
        assert_eq!(Framer::new("a b").first, b"a_b | ");
    }

    #[test]
    fn whole_lines_get_one_prefix_each() {
        let (out, f) = frame("web", &[b"one\ntwo\n\nthree"]);
        assert_eq!(strs(&out), ["web | one\n", "web | two\n", "web | \n"]);
        assert_eq!(f.pending(), 5);
    }

    #[test]
    fn a_line_may_come_in_many_reads() {
        let (out, f) = frame("db", &[b"he", b"l", b"", b"lo\nwor", b"ld\n"]);
        assert_eq!(strs(&out), ["db | hello\n", "db | world\n"]);
        assert_eq!(f.pending(), 0);
    }

    #[test]
    fn the_bytes_are_the_commands_own() {
        let bytes = b"\x1b[31mred\x1b[0m \xff\xfe\0\r|x\n";
        let (out, _) = frame("c", &[bytes]);
        let mut want = b"c | ".to_vec();
        want.extend_from_slice(bytes);
        assert_eq!(out, [want]);
    }

    #[test]
    fn finish_adds_the_missing_newline_only_when_needed() {
        let (mut out, mut f) = frame("c", &[b"a\nlast"]);
        f.finish(&mut out);
        assert_eq!(strs(&out), ["c | a\n", "c | last\n"]);
        assert_eq!(f.pending(), 0);
        f.finish(&mut out);
        assert_eq!(out.len(), 2, "nothing more to flush");
        let (mut out, mut f) = frame("c", &[b"a\n"]);
        f.finish(&mut out);
        assert_eq!(strs(&out), ["c | a\n"]);
    }

    #[test]
    fn a_line_exactly_at_the_cap_is_not_split() {
        let text = vec![b'x'; PIPE_BUF - "c | ".len() - 1];
        let mut line = text.clone();
        line.push(b'\n');
        let (out, f) = frame("c", &[&line]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].len(), PIPE_BUF);
        assert_eq!(f.pending(), 0);
        // The same line, its newline in a later read.
        let (mut out, mut f) = frame("c", &[&text]);
        assert!(out.is_empty());
        f.feed(b"\n", &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].len(), PIPE_BUF);
    }

    #[test]
    fn a_long_line_is_split_at_the_cap_and_its_pieces_marked() {
        let max = PIPE_BUF - "web | ".len() - 1;
        let text: Vec<u8> = (0..2 * max + 10).map(|i| b'a' + (i % 26) as u8).collect();
        let mut input = text.clone();
        input.extend_from_slice(b"\nnext\n");
        let (out, f) = frame("web", &[&input]);
        assert_eq!(out.len(), 4);
        assert!(out.iter().all(|l| l.len() <= PIPE_BUF && l.ends_with(b"\n")));
        assert_eq!(out[0].len(), PIPE_BUF);
        assert_eq!(out[1].len(), PIPE_BUF);
        assert!(out[0].starts_with(b"web | "));
        assert!(out[1].starts_with(b"web + "));
        assert!(out[2].starts_with(b"web + "));
        assert_eq!(out[3], b"web | next\n");
        let joined: Vec<u8> = out[..3].iter().flat_map(|l| l[6..l.len() - 1].to_vec()).collect();
        assert_eq!(joined, text);
        assert_eq!(f.pending(), 0);
    }

    #[test]
    fn a_split_line_fed_byte_by_byte_splits_the_same() {
        let input: Vec<u8> =
            (0..9000).map(|i| if i == 8999 { b'\n' } else { b'0' + (i % 10) as u8 }).collect();
        let (whole, _) = frame("n", &[&input]);
        let chunks: Vec<&[u8]> = input.chunks(1).collect();
        let (bytewise, _) = frame("n", &chunks);
        let chunks: Vec<&[u8]> = input.chunks(1000).collect();
        let (thousands, _) = frame("n", &chunks);
        assert_eq!(whole, bytewise);
        assert_eq!(whole, thousands);
        assert_eq!(whole.len(), 3);
    }

    #[test]
    fn an_unfinished_split_line_is_finished_as_a_continuation() {
        let max = PIPE_BUF - "c | ".len() - 1;
        let (mut out, mut f) = frame("c", &[&vec![b'y'; max + 3]]);
        assert_eq!(out.len(), 1);
        f.finish(&mut out);
        assert_eq!(strs(&out)[1], "c + yyy\n");
        f.feed(b"z\n", &mut out);
        assert_eq!(strs(&out)[2], "c | z\n", "a new line after the flush");
    }

    #[test]
    fn a_split_does_not_cut_a_utf8_sequence() {
        let max = PIPE_BUF - "c | ".len() - 1;
        for offset in 0..4 {
            // "é" (2 bytes) or "€" (3) or "😀" (4) straddling the cap.
            for ch in ["é", "€", "😀"] {
                let mut text = "a".repeat(max - offset);
                text.push_str(ch);
                text.push_str("tail");
                let (out, _) = frame("c", &[format!("{text}\n").as_bytes()]);
                let pieces: Vec<&[u8]> = out.iter().map(|l| &l[4..l.len() - 1]).collect();
                assert!(pieces.iter().all(|p| std::str::from_utf8(p).is_ok()), "{offset} {ch}");
                assert_eq!(pieces.concat(), text.as_bytes());
                assert!(out.iter().all(|l| l.len() <= PIPE_BUF));
            }
        }
    }

    #[test]
    fn a_split_of_bytes_that_are_not_utf8_cuts_at_the_cap() {
        let max = PIPE_BUF - "c | ".len() - 1;
        // Continuation bytes with no lead byte: nowhere better to cut.
        let text = vec![0x80u8; max + 5];
        let (out, _) = frame("c", &[&text]);
        assert_eq!(out[0].len(), PIPE_BUF);
        // A lead byte too far back (more than 3 continuation bytes follow it).
        let mut text = vec![b'a'; max - 4];
        text.extend_from_slice(&[0xC3, 0x80, 0x80, 0x80, 0x80, 0x80]);
        let (out, _) = frame("c", &[&text]);
        assert_eq!(out[0].len(), PIPE_BUF);
        // An ASCII byte before the continuation: no lead byte to move to.
        let mut text = vec![b'a'; max];
        text.push(0x80);
        let (out, _) = frame("c", &[&text]);
        assert_eq!(out[0].len(), PIPE_BUF);
        // A lead byte right before the cut.
        let mut text = vec![b'a'; max - 1];
        text.extend_from_slice("é".as_bytes());
        text.push(b'\n');
        let (out, _) = frame("c", &[&text]);
        assert_eq!(out[0].len(), PIPE_BUF - 1);
        assert_eq!(out[1], "c + é\n".as_bytes());
    }

    #[test]
    fn worst_case_bounds_what_a_read_produces() {
        let mut f = Framer::new("abc");
        let mut out = Vec::new();
        f.feed(&vec![b'x'; 4000], &mut out);
        let input = vec![b'\n'; 1000];
        f.feed(&input, &mut out);
        let total: usize = out.iter().map(Vec::len).sum();
        assert!(total <= f.worst_case(1000));
        assert_eq!(f.worst_case(10), 10 * 7 + PIPE_BUF);
        assert_eq!(total, 999 * 7 + "abc | ".len() + 4000 + 1);
    }

    #[test]
    fn a_queue_keeps_lines_in_order_and_fills_whole_lines() {
        let mut q = Queue::new(100);
        assert!(q.is_empty());
        assert!(q.push("a", b"a | 1\n".to_vec()));
        assert!(q.push("b", b"b | 2\n".to_vec()));
        assert!(q.push("a", b"a | 3\n".to_vec()));
        assert!(!q.is_empty());
        assert_eq!(q.len(), 3);
        assert_eq!(q.room(), 82);
        let mut buf = Vec::new();
        q.fill(13, &mut buf);
        assert_eq!(buf, b"a | 1\nb | 2\n", "whole lines only");
        let mut buf = Vec::new();
        q.fill(12, &mut buf);
        assert_eq!(buf, b"a | 1\nb | 2\n", "exactly fits");
        let mut buf = Vec::new();
        q.fill(3, &mut buf);
        assert_eq!(buf, b"a | 1\n", "at least one line");
        q.consume(6);
        assert_eq!(q.len(), 2);
        assert_eq!(q.room(), 88);
        let mut buf = Vec::new();
        q.fill(4096, &mut buf);
        assert_eq!(buf, b"b | 2\na | 3\n");
        q.consume(12);
        assert!(q.is_empty());
        assert_eq!(q.room(), 100);
    }

    #[test]
    fn a_partly_written_line_resumes_where_it_stopped() {
        let mut q = Queue::new(100);
        q.push("a", b"a | 12345\n".to_vec());
        q.push("a", b"a | 6\n".to_vec());
        q.consume(3);
        assert_eq!(q.room(), 100 - 13);
        let mut buf = Vec::new();
        q.fill(4096, &mut buf);
        assert_eq!(buf, b" 12345\na | 6\n");
        q.consume(4);
        let mut buf = Vec::new();
        q.fill(3, &mut buf);
        assert_eq!(buf, b"45\n", "the rest of the line counts as one");
        q.consume(3);
        assert_eq!(q.len(), 1);
        q.consume(1000);
        assert!(q.is_empty());
        assert_eq!(q.room(), 100);
        q.consume(5);
        assert_eq!(q.room(), 100);
    }

    #[test]
    fn a_full_queue_drops_whole_lines_and_reports_them_when_room_returns() {
        let line = |n: u32| format!("web | {n:03}\n").into_bytes(); // 10 bytes
        let report = notice("web", 3);
        assert_eq!(report, b"reaper | dropped 3 lines from web\n");
        let mut q = Queue::new(44);
        for n in 0..4 {
            assert!(q.push("web", line(n)));
        }
        assert_eq!(q.room(), 4);
        assert!(!q.push("web", line(4)));
        assert!(!q.push("web", line(5)));
        assert!(!q.push("db", b"db | x\n".to_vec()));
        assert!(!q.push("web", line(6)));
        assert_eq!(q.unreported(), 4);
        // Room for the first report only after three lines leave.
        q.consume(20);
        assert_eq!(q.len(), 2, "34 bytes do not fit in 24");
        assert!(!q.push("web", line(7)), "still behind the report");
        q.consume(10);
        assert_eq!(q.len(), 2, "the report entered");
        assert_eq!(q.room(), 0);
        let mut buf = Vec::new();
        q.fill(4096, &mut buf);
        assert_eq!(buf, [line(3), notice("web", 4)].concat());
        q.consume(10);
        assert_eq!(q.unreported(), 1);
        q.consume(34);
        assert!(q.push("web", line(8)));
        let mut buf = Vec::new();
        q.fill(4096, &mut buf);
        assert_eq!(buf, [notice("db", 1), line(8)].concat());
        assert_eq!(q.unreported(), 0);
    }

    #[test]
    fn a_line_may_go_beyond_the_bound_up_to_a_limit() {
        let mut q = Queue::new(10);
        assert!(q.push("a", b"a | 1234\n".to_vec()));
        assert!(!q.push("a", b"a | 5\n".to_vec()));
        q.consume(9);
        assert_eq!(q.len(), 0, "the report does not fit the bound");
        assert!(q.push_within("a", b"a | 6\n".to_vec(), 37), "the report and the line fit the limit");
        assert!(!q.push_within("b", b"b | 7\n".to_vec(), 42));
        assert!(q.push_within("a", b"a | 8\n".to_vec(), 43 + 31));
        assert_eq!(q.room(), 0);
        let mut buf = Vec::new();
        q.fill(4096, &mut buf);
        assert_eq!(buf, [&notice("a", 1)[..], b"a | 6\n", &notice("b", 1), b"a | 8\n"].concat());
    }

    #[test]
    fn the_bounds_are_the_documented_ones() {
        // docs/logs.md: lines of at most 4096 bytes, 256 KiB per destination, names of 32.
        assert_eq!((PIPE_BUF, QUEUE_BYTES, NAME_MAX), (4096, 262_144, 32));
        assert_eq!(Queue::default().room(), 262_144);
    }

    #[test]
    fn one_dropped_line_is_a_line() {
        assert_eq!(notice("x", 1), b"reaper | dropped 1 line from x\n");
    }

    #[test]
    fn abandoning_counts_what_was_waiting() {
        let mut q = Queue::new(12);
        q.push("a", b"a | 1\n".to_vec());
        q.push("a", b"a | 2\n".to_vec());
        q.push("a", b"a | 3\n".to_vec());
        q.consume(2);
        assert_eq!(q.abandon(), 3);
        assert!(q.is_empty());
        assert_eq!(q.room(), 12);
        assert_eq!(q.unreported(), 0);
        assert!(q.push("a", b"a | 4\n".to_vec()));
        let mut buf = Vec::new();
        q.fill(4096, &mut buf);
        assert_eq!(buf, b"a | 4\n", "nothing of the abandoned line is left");
        assert_eq!(q.abandon(), 1);
        assert_eq!(Queue::default().room(), QUEUE_BYTES);
    }
}
