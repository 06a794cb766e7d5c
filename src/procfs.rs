//! Finding reaper's live children and descendants, and naming processes, from /proc.

use std::io;

use crate::state::Id;
use crate::text;

/// The short command name of a process, from /proc/PID/comm, printable
/// ([`text::printable`]): the process chose it, and it goes into log lines.
pub fn name(pid: i32) -> Option<String> {
    let comm = std::fs::read(format!("/proc/{pid}/comm")).ok()?;
    // The kernel ends it with a newline; any other is the name's own.
    Some(text::printable(comm.strip_suffix(b"\n").unwrap_or(&comm)))
}

/// Whether /proc is another PID namespace's: its `self` is not reaper's pid (or there is no
/// `self` for reaper in a /proc that has processes). As PID 1 of `unshare -p -f` without
/// `--mount-proc` it is the parent namespace's, where /proc/N is another process than pid N
/// here: a walk there would find made-up children and parents. No /proc at all is not
/// foreign: reading it just fails.
pub fn foreign() -> bool {
    static FOREIGN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *FOREIGN.get_or_init(|| match std::fs::read_link("/proc/self") {
        Ok(p) => p.as_os_str() != std::process::id().to_string().as_str(),
        Err(_) => std::path::Path::new("/proc/1").exists(),
    })
}

/// What reaper needs of /proc/PID/stat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// R, S, D, Z, …: field 3.
    pub state: u8,
    pub ppid: i32,
    pub pgrp: i32,
    /// When it started, in clock ticks after boot (field 22): with the pid it names one
    /// process for good, since a reused pid starts later.
    pub start: u64,
}

/// /proc/PID/stat, or `None` if the process is gone (or the file unreadable).
pub fn stat(pid: i32) -> Option<Stat> {
    read_stat(pid).ok().flatten()
}

/// /proc/PID/stat: `Ok(None)` if the process is gone, `Err` if /proc could not tell (no
/// descriptor left, /proc hidden, …): "cannot tell" is never "gone". Read as bytes: the
/// command name is the process's choice, not necessarily UTF-8.
pub fn read_stat(pid: i32) -> io::Result<Option<Stat>> {
    let text = match std::fs::read(format!("/proc/{pid}/stat")) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH) => {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    Ok(parse_stat(&text).map(|(stat, _)| stat))
}

/// The fields of a /proc/PID/stat reaper needs, and the command name's raw bytes (field 2).
/// The name may hold any byte but NUL, parentheses and newlines too, so it runs from the
/// first `(` to the last `)`; the fields are counted from that `)`.
pub fn parse_stat(stat: &[u8]) -> Option<(Stat, &[u8])> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    let comm = stat.get(stat.iter().position(|&b| b == b'(')? + 1..close)?;
    let rest = std::str::from_utf8(stat.get(close + 1..)?).ok()?;
    // Field 3 first: each field n is at index n - 3.
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.bytes().next()?;
    let mut pid = || i32::try_from(text::number(fields.next()?)?).ok();
    let (ppid, pgrp) = (pid()?, pid()?);
    let start = text::number(fields.nth(22 - 6)?)?;
    Some((Stat { state, ppid, pgrp, start }, comm))
}

/// Whether `id` still names a running process: the pid is there, with the same start time
/// (a reused pid starts later), and has not exited (a zombie, or dead, has).
pub fn alive(id: Id) -> bool {
    stat(id.pid).is_some_and(|s| s.start == id.start && !matches!(s.state, b'Z' | b'X' | b'x'))
}

/// When a process started (see [`Stat::start`]); 0 if unreadable.
pub fn start_time(pid: i32) -> u64 {
    stat(pid).map_or(0, |s| s.start)
}

/// A pid found in /proc, with its start time.
pub fn id(pid: i32) -> Id {
    Id { pid, start: start_time(pid) }
}

/// The children of `pid` (every thread's), from /proc/PID/task/TID/children.
///
/// An error means "cannot tell", never "none": a kernel without CONFIG_PROC_CHILDREN has no
/// `children` file while the task directory is there, and any other read failure is passed
/// on too. Only a task (or the whole process) that exited while we looked counts as empty.
pub fn children(pid: i32) -> io::Result<Vec<i32>> {
    if foreign() {
        let why = "/proc is another PID namespace's (mount this one's: unshare --mount-proc)";
        return Err(io::Error::new(io::ErrorKind::Unsupported, why));
    }
    let mut found = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let task = task?.path();
        match std::fs::read_to_string(task.join("children")) {
            Ok(list) => found.extend(list.split_ascii_whitespace().filter_map(|c| c.parse::<i32>().ok())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if task.exists() {
                    let why = format!(
                        "{} has no children file (kernel without CONFIG_PROC_CHILDREN?)",
                        task.display()
                    );
                    return Err(io::Error::new(io::ErrorKind::Unsupported, why));
                }
            }
            Err(e) => {
                let kind = e.kind();
                return Err(io::Error::new(
                    kind,
                    format!("{}/children: {}", task.display(), crate::error::os(e)),
                ));
            }
        }
    }
    Ok(found)
}

/// Every live descendant of `root`, found afresh (new orphans keep arriving, so a cached tree
/// would be stale). Fails if /proc cannot list them.
pub fn descendants(root: i32) -> io::Result<Vec<i32>> {
    let mut found = Vec::new();
    let mut queue = vec![root];
    while let Some(pid) = queue.pop() {
        match children(pid) {
            Ok(kids) => {
                found.extend_from_slice(&kids);
                queue.extend(kids);
            }
            // It exited while we walked; its children are re-parented to us and found next pass.
            Err(e) if pid != root && e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_reads_parent_group_and_start_time() {
        // A child's, not our own: qemu-user (scripts/test-cross) fakes /proc/self/stat.
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id() as i32;
        let s = stat(pid).unwrap();
        let start = start_time(pid);
        assert!(alive(Id { pid, start }));
        assert!(!alive(Id { pid, start: start + 1 }), "another start time is another process");
        let _ = child.kill();
        while stat(pid).is_some_and(|s| s.state != b'Z') {}
        assert!(!alive(Id { pid, start }), "a zombie has exited");
        let _ = child.wait();
        assert_eq!(s.ppid, std::process::id() as i32);
        assert_eq!(s.pgrp, nix::unistd::getpgrp().as_raw());
        assert!(s.start > 0);
        assert_eq!(start, s.start);
        assert_eq!(start_time(pid), 0, "reaped: gone");
        assert_eq!(stat(i32::MAX), None);
    }

    #[test]
    fn stat_with_spaces_parentheses_and_any_byte_in_the_name() {
        let stat = b"17 (a) b (c)) S 1 16 17 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 4242 1000 200";
        let want = Stat { state: b'S', ppid: 1, pgrp: 16, start: 4242 };
        assert_eq!(parse_stat(stat), Some((want, &b"a) b (c)"[..])));
        // Not UTF-8: the fields are read all the same.
        let stat = b"9 (\xff\xfe) Z 2 3 3 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 77 0 0";
        let want = Stat { state: b'Z', ppid: 2, pgrp: 3, start: 77 };
        assert_eq!(parse_stat(stat), Some((want, &b"\xff\xfe"[..])));
        // Cut short, or no name: nothing.
        assert_eq!(parse_stat(b"17 (x) Z 3"), None);
        assert_eq!(parse_stat(b"17 (x) Z 3 4 4 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0"), None);
        assert_eq!(parse_stat(b"17 (x) Z 3 4 4 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 -5"), None);
        assert_eq!(parse_stat(b"17 (x) Z 3 x 4 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5"), None);
        assert_eq!(parse_stat(b"17 (x) Z 99999999999 4 4 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5"), None);
        assert_eq!(parse_stat(b"17 (x)  "), None);
        assert_eq!(parse_stat(b"17 x) S 1 1 1"), None);
        assert_eq!(parse_stat(b""), None);
        assert_eq!(parse_stat(b") ("), None);
    }

    #[test]
    fn a_name_is_printable_and_only_the_kernels_newline_is_dropped() {
        // This test's own thread: only the thread group can rename itself.
        let tid = nix::unistd::gettid().as_raw();
        let rename = |name: &[u8]| std::fs::write("/proc/thread-self/comm", name).unwrap();
        rename(b"x\x1b[2J\x07\n");
        assert_eq!(name(tid).as_deref(), Some("x?[2J??"));
        // Cut by the kernel to 15 bytes.
        rename(b"\nreaper: ERROR forged");
        assert_eq!(name(tid).as_deref(), Some("?reaper: ERROR "));
        assert_eq!(name(i32::MAX), None);
    }
}
