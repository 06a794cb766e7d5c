//! sd_notify messages, pure: what a datagram on reaper's `NOTIFY_SOCKET` says, and whether
//! its sender counts for a command. No syscalls here; `readiness` does the I/O.
//!
//! A message is newline-separated `KEY=VALUE` lines (systemd's `sd_notify(3)`), at most
//! [`MAX_MESSAGE`] bytes. reaper reads `READY=1`, `STOPPING=1` and `STATUS=…`; other keys
//! (`MAINPID=`, `WATCHDOG=1`, `RELOADING=1`, …) are accepted and ignored. The sender chose
//! every byte: a message that is not well formed is rejected whole, never partly believed.

/// The largest datagram read (systemd reads 4 KiB notification messages too).
pub const MAX_MESSAGE: usize = 4096;

/// The longest chain of parents walked up from a sender to find the command it belongs to.
/// Real process trees are a few levels deep; the bound keeps a hostile or changing tree
/// (a cycle read from a racing /proc) from holding the loop.
pub const MAX_DEPTH: usize = 64;

/// What one well-formed message says.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Message<'a> {
    /// A line `READY=1`, exactly.
    pub ready: bool,
    /// A line `STOPPING=1`, exactly.
    pub stopping: bool,
    /// The value of the last `STATUS=` line (raw bytes: sanitize before logging).
    pub status: Option<&'a [u8]>,
}

/// Why a datagram was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    Empty,
    TooLong,
    /// A NUL byte anywhere (systemd rejects those too).
    Nul,
    /// A non-empty line without `=`, or whose key is empty or not `[A-Z0-9_]`.
    Line,
}

impl Malformed {
    pub fn as_str(self) -> &'static str {
        match self {
            Malformed::Empty => "empty",
            Malformed::TooLong => "longer than 4096 bytes",
            Malformed::Nul => "contains a NUL byte",
            Malformed::Line => "a line is not KEY=VALUE",
        }
    }
}

/// Parses one datagram. Empty lines (a trailing newline) are allowed; `READY=1` counts only
/// as a whole line (`READY=10`, ` READY=1`, `XREADY=1` do not).
pub fn parse(bytes: &[u8]) -> Result<Message<'_>, Malformed> {
    if bytes.is_empty() {
        return Err(Malformed::Empty);
    }
    if bytes.len() > MAX_MESSAGE {
        return Err(Malformed::TooLong);
    }
    if bytes.contains(&0) {
        return Err(Malformed::Nul);
    }
    let mut msg = Message::default();
    for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let eq = line.iter().position(|&b| b == b'=').ok_or(Malformed::Line)?;
        let (key, value) = (&line[..eq], &line[eq + 1..]);
        if key.is_empty() || !key.iter().all(|&b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_') {
            return Err(Malformed::Line);
        }
        match key {
            b"READY" => msg.ready |= value == b"1",
            b"STOPPING" => msg.stopping |= value == b"1",
            b"STATUS" => msg.status = Some(value),
            _ => {}
        }
    }
    Ok(msg)
}

/// Which of `commands` (index, pid) the process `sender` belongs to: the command whose pid it
/// is, or whose descendant it is, the nearest such ancestor winning. `ppid` looks up a
/// process's parent (`None`: unknown, e.g. no /proc; then only an exact pid counts). The walk
/// stops at pid 0 and 1, at `me` (reaper: its other children are not the command's), after
/// [`MAX_DEPTH`] steps, and at a process that is its own parent.
pub fn attribute(
    sender: i32,
    commands: &[(usize, i32)],
    me: i32,
    mut ppid: impl FnMut(i32) -> Option<i32>,
) -> Option<usize> {
    // Only a pid above 1 is looked up (below), so a 0 recorded for a command never matches.
    let owner = |pid: i32| commands.iter().find(|&&(_, p)| p == pid).map(|&(i, _)| i);
    let mut pid = sender;
    for _ in 0..MAX_DEPTH {
        if pid <= 1 || pid == me {
            return None;
        }
        if let Some(index) = owner(pid) {
            return Some(index);
        }
        let parent = ppid(pid)?;
        if parent == pid {
            return None;
        }
        pid = parent;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(bytes: &[u8]) -> Message<'_> {
        parse(bytes).unwrap()
    }

    #[test]
    fn ready_stopping_and_status_lines() {
        assert_eq!(ok(b"READY=1"), Message { ready: true, ..Message::default() });
        assert_eq!(ok(b"READY=1\n"), Message { ready: true, ..Message::default() });
        assert_eq!(ok(b"STOPPING=1"), Message { stopping: true, ..Message::default() });
        let m = ok(b"STATUS=starting\nMAINPID=42\n\nREADY=1\nSTATUS=up and running\n");
        assert_eq!(m, Message { ready: true, stopping: false, status: Some(b"up and running") });
        assert_eq!(ok(b"STATUS="), Message { status: Some(b""), ..Message::default() });
        assert_eq!(ok(b"READY=1\nSTOPPING=1"), Message { ready: true, stopping: true, status: None });
        // Once said, a later READY=0 in the same message does not take it back.
        assert!(ok(b"READY=1\nREADY=0").ready);
        assert!(ok(b"STOPPING=1\nSTOPPING=0").stopping);
        assert!(ok(b"WATCHDOG=1\nX_9=a=b\nREADY=1").ready);
    }

    #[test]
    fn ready_only_as_a_whole_line() {
        for not in [
            &b"READY=0"[..],
            b"READY=10",
            b"READY=1 ",
            b"READY=",
            b"XREADY=1",
            b"READY_=1",
            b"STATUS=READY=1",
            b"STATUS=x\rREADY=1",
            b"STOPPING=2",
            b"MAINPID=1",
        ] {
            let m = ok(not);
            assert!(!m.ready && !m.stopping, "{:?}", String::from_utf8_lossy(not));
        }
        assert_eq!(ok(b"STATUS=READY=1").status, Some(&b"READY=1"[..]));
    }

    #[test]
    fn malformed_messages_are_rejected_whole() {
        assert_eq!(parse(b""), Err(Malformed::Empty));
        assert_eq!(parse(b"READY=1\0"), Err(Malformed::Nul));
        assert_eq!(parse(b"\0"), Err(Malformed::Nul));
        assert_eq!(parse(b"READY=1\nhello"), Err(Malformed::Line));
        assert_eq!(parse(b"=1"), Err(Malformed::Line));
        assert_eq!(parse(b" READY=1"), Err(Malformed::Line));
        assert_eq!(parse(b"ready=1"), Err(Malformed::Line));
        assert_eq!(parse(b"READY =1"), Err(Malformed::Line));
        assert_eq!(parse(b"R\xffY=1"), Err(Malformed::Line));
        assert_eq!(parse(b"READY=1\r\n"), Ok(Message { ready: false, stopping: false, status: None }));
        let mut long = b"READY=1\nSTATUS=".to_vec();
        long.resize(MAX_MESSAGE, b'x');
        assert!(ok(&long).ready);
        long.push(b'x');
        assert_eq!(parse(&long), Err(Malformed::TooLong));
        // Any value bytes are fine (sanitized before logging).
        assert_eq!(ok(b"STATUS=\x1b[2J\xff").status, Some(&b"\x1b[2J\xff"[..]));
        // Empty lines alone: well formed, says nothing.
        assert_eq!(ok(b"\n\n"), Message::default());
        for m in [Malformed::Empty, Malformed::TooLong, Malformed::Nul, Malformed::Line] {
            assert!(!m.as_str().is_empty());
        }
        assert_eq!(Malformed::TooLong.as_str(), "longer than 4096 bytes");
        assert_eq!(Malformed::Nul.as_str(), "contains a NUL byte");
        assert_eq!(Malformed::Line.as_str(), "a line is not KEY=VALUE");
        assert_eq!(Malformed::Empty.as_str(), "empty");
    }

    /// A process tree as (pid, ppid) pairs.
    fn tree(pairs: &[(i32, i32)]) -> impl FnMut(i32) -> Option<i32> + '_ {
        |pid| pairs.iter().find(|&&(p, _)| p == pid).map(|&(_, pp)| pp)
    }

    #[test]
    fn a_sender_counts_for_the_command_it_is_or_descends_from() {
        // reaper 1; commands 10 (index 0) and 20 (index 2); 11 under 10, 12 under 11; 30 is
        // another child of reaper; 40 an orphan re-parented to reaper.
        let t = [(10, 1), (11, 10), (12, 11), (20, 1), (21, 20), (30, 1), (40, 1)];
        let cmds = [(0, 10), (2, 20)];
        assert_eq!(attribute(10, &cmds, 1, tree(&t)), Some(0));
        assert_eq!(attribute(11, &cmds, 1, tree(&t)), Some(0));
        assert_eq!(attribute(12, &cmds, 1, tree(&t)), Some(0));
        assert_eq!(attribute(20, &cmds, 1, tree(&t)), Some(2));
        assert_eq!(attribute(21, &cmds, 1, tree(&t)), Some(2));
        assert_eq!(attribute(30, &cmds, 1, tree(&t)), None);
        assert_eq!(attribute(40, &cmds, 1, tree(&t)), None);
        assert_eq!(attribute(99, &cmds, 1, tree(&t)), None, "unknown pid");
        assert_eq!(attribute(0, &cmds, 1, tree(&t)), None, "pid 0: outside our namespace");
        assert_eq!(attribute(1, &cmds, 1, tree(&t)), None);
        assert_eq!(attribute(-5, &cmds, 1, tree(&t)), None);
        // No /proc: only the exact pid.
        assert_eq!(attribute(10, &cmds, 1, |_| None), Some(0));
        assert_eq!(attribute(11, &cmds, 1, |_| None), None);
        // No commands waiting: nothing.
        assert_eq!(attribute(10, &[], 1, tree(&t)), None);
    }

    #[test]
    fn the_walk_stops_at_reaper_its_parents_and_loops() {
        // Subreaper mode: reaper is 500 under a shell 400 under 1; a command is 600.
        let t = [(600, 500), (601, 600), (500, 400), (400, 1), (700, 400)];
        let cmds = [(1, 600)];
        assert_eq!(attribute(601, &cmds, 500, tree(&t)), Some(1));
        assert_eq!(attribute(700, &cmds, 500, tree(&t)), None);
        // A command index whose pid would only be found beyond reaper is never reached.
        assert_eq!(attribute(601, &[(3, 400)], 500, tree(&t)), None);
        assert_eq!(attribute(500, &[(3, 500)], 500, tree(&t)), None, "reaper itself");
        // Cycles (a racing /proc): a self-parent and a two-process loop end the walk.
        let mut calls = 0;
        let looped = |pid: i32| {
            calls += 1;
            Some(if pid == 7 { 8 } else { 7 })
        };
        assert_eq!(attribute(7, &cmds, 500, looped), None);
        assert_eq!(calls, MAX_DEPTH);
        let mut calls = 0;
        let own = |pid: i32| {
            calls += 1;
            Some(pid)
        };
        assert_eq!(attribute(9, &cmds, 500, own), None);
        assert_eq!(calls, 1);
        // A chain of exactly MAX_DEPTH - 1 parents above the sender is still walked.
        let deep = |pid: i32| Some(pid + 1);
        let top = 1000 + MAX_DEPTH as i32 - 1;
        assert_eq!(attribute(1000, &[(4, top)], 500, deep), Some(4));
        assert_eq!(attribute(1000, &[(4, top + 1)], 500, deep), None);
        // A pid 0 recorded for a command never matches.
        assert_eq!(attribute(0, &[(4, 0)], 500, |_| None), None);
        assert_eq!(attribute(5, &[(4, 0)], 500, |_| Some(0)), None);
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..5000)) {
            if let Ok(m) = parse(&bytes) {
                prop_assert!(!bytes.is_empty() && bytes.len() <= MAX_MESSAGE && !bytes.contains(&0));
                if m.ready {
                    prop_assert!(bytes.split(|&b| b == b'\n').any(|l| l == b"READY=1"));
                }
            }
        }

        #[test]
        fn ready_is_found_among_any_well_formed_lines(
            lines in proptest::collection::vec(("[A-Z_]{1,8}", "[ -~]{0,20}"), 0..20),
            at in 0usize..20,
        ) {
            let mut lines: Vec<String> = lines.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
            let ready_before = lines.iter().any(|l| l == "READY=1");
            let at = at.min(lines.len());
            lines.insert(at, "READY=1".into());
            let text = lines.join("\n");
            prop_assert!(ok(text.as_bytes()).ready);
            lines.remove(at);
            if !ready_before && !lines.is_empty() {
                prop_assert!(!ok(lines.join("\n").as_bytes()).ready);
            }
        }

        #[test]
        fn attribution_follows_the_chain(depth in 0usize..MAX_DEPTH, extra in 0i32..5) {
            // A chain 100 -> 101 -> ... (each the parent of the previous): the command at
            // 100 + depth owns every pid below it.
            let cmd = 100 + depth as i32;
            let up = |pid: i32| Some(pid + 1);
            prop_assert_eq!(attribute(100, &[(7, cmd)], 1, up), Some(7));
            prop_assert_eq!(attribute(cmd + 1 + extra, &[(7, cmd)], 1, |p| if p > 200 { Some(1) } else { Some(p + 1) }), None);
        }
    }
}
