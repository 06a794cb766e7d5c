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
/// descriptor left, /proc hidden, …): "cannot tell" is never "gone".
pub fn read_stat(pid: i32) -> io::Result<Option<Stat>> {
    let text = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH) => {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    Ok(parse_stat(&text))
}

fn parse_stat(text: &str) -> Option<Stat> {
    // The command name (field 2) may contain spaces and parentheses: count from the last ')'.
    let fields: Vec<&str> = text.rsplit_once(')')?.1.split_ascii_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    let pid = |n: usize| field(n).and_then(|v| i32::try_from(v).ok());
    let state = fields.first()?.bytes().next()?;
    Some(Stat { state, ppid: pid(4)?, pgrp: pid(5)?, start: field(22)? })
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
