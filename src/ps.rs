//! `reaper --ps`: the processes of this PID namespace as a tree, whose each zombie is, and
//! whether PID 1 reaps orphans. [`render`] is pure (records in, text out); [`read_proc`] is
//! the thin layer that fills the records from /proc.

use std::io::Write;
use std::os::unix::fs::MetadataExt;

use crate::error::Error;
use crate::procfs;
use crate::text;
pub use crate::text::number;

/// One process of the listing: what could be read about it. Fields that could not be read keep their defaults
/// (`?` state, no uid, no age): a process is listed with what is readable, never an error.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Entry {
    pub pid: i32,
    /// 0 when the parent is outside this PID namespace (or unknown).
    pub ppid: i32,
    /// The state letter of /proc/PID/stat (R, S, D, Z, T, …).
    pub state: char,
    /// The command name, printable ([`text::printable`]).
    pub comm: String,
    /// The arguments joined by spaces, printable; empty for zombies and kernel threads.
    pub cmdline: String,
    pub uid: Option<u32>,
    /// Seconds since the process started.
    pub age: Option<u64>,
    /// Its /proc/PID/exe is the same file (device and inode) as ours: it is reaper.
    pub reaper: bool,
}

/// PID 1 names (comm: the executable's file name) that reap orphans. By name only: a look-alike
/// would pass, but an init in a container is what the image put there, and comm is all /proc
/// shows without privilege.
const INITS: [&str; 12] = [
    "reaper",
    "tini",
    "tini-static",
    "docker-init",
    "dumb-init",
    "catatonit",
    "podman-init",
    "s6-svscan",
    "runit",
    "pause",
    "systemd",
    "init",
];

/// The listing of `procs` (any order) for a terminal `width` columns wide, and the number of
/// zombies.
pub fn render(procs: Vec<Entry>, width: usize) -> (String, usize) {
    render_with(procs, width, None)
}

/// [`render`], with `memory` (the cgroup's summary line) above the counts.
pub fn render_with(mut procs: Vec<Entry>, width: usize, memory: Option<String>) -> (String, usize) {
    // Insertion sort: /proc lists processes in pid order already, so this is one pass there,
    // and it costs none of the 2 KB of binary that the standard sort does.
    for i in 1..procs.len() {
        let mut j = i;
        while j > 0 && procs[j - 1].pid > procs[j].pid {
            procs.swap(j - 1, j);
            j -= 1;
        }
    }
    let n = procs.len();
    let find = |pid: i32| procs.binary_search_by_key(&pid, |p| p.pid).ok();
    // The tree as linked lists: first child and next sibling, in pid order; `top` heads the
    // processes whose parent is not listed.
    const NONE: usize = usize::MAX;
    let (mut first, mut next, mut top) = (vec![NONE; n], vec![NONE; n], NONE);
    for i in (0..n).rev() {
        let head = match find(procs[i].ppid) {
            Some(j) => &mut first[j],
            None => &mut top,
        };
        next[i] = *head;
        *head = i;
    }
    let mut out = String::from("    PID    PPID S    AGE   UID COMMAND\n");
    let (mut listed, mut zombies) = (0, 0);
    // Depth-first, iteratively (a chain of thousands must not overflow the stack). Each process
    // is in one list, so none is listed twice. (Parent links read at different instants could,
    // with a pid reused meanwhile, form a cycle; its members, unreachable, are left out.)
    let mut stack = vec![(top, 0)];
    while let Some((i, depth)) = stack.pop() {
        if i == NONE {
            continue;
        }
        listed += 1;
        let p = &procs[i];
        let note = if p.state == 'Z' {
            zombies += 1;
            match find(p.ppid) {
                Some(j) => {
                    format!("zombie: parent {} ({}) has not called wait()", p.ppid, procs[j].comm)
                }
                None => "zombie: its parent is outside this PID namespace".to_owned(),
            }
        } else if p.reaper && p.pid != 1 && !p.cmdline.split(' ').any(|a| a == "--ps") {
            // A reaper that is not PID 1 is a subreaper, unless it is a listing like this one.
            "subreaper: reaps the orphans below it".to_owned()
        } else {
            String::new()
        };
        line(&mut out, p, depth, &note, width);
        stack.extend([(next[i], depth), (first[i], depth + 1)]);
    }
    if let Some(memory) = memory {
        out += &memory;
        out.push('\n');
    }
    out += &format!(
        "{listed} process{}, {zombies} zombie{}\n{}\n",
        if listed == 1 { "" } else { "es" },
        if zombies == 1 { "" } else { "s" },
        pid1(find(1).map(|i| &procs[i]))
    );
    (out, zombies)
}

/// The summary's verdict on PID 1.
fn pid1(p: Option<&Entry>) -> String {
    let Some(p) = p else {
        return "PID 1 is not visible in /proc.".to_owned();
    };
    let name = &p.comm;
    if p.reaper {
        "PID 1 is reaper: it reaps orphans.".to_owned()
    } else if INITS.contains(&name.as_str()) {
        format!("PID 1 is {name}, an init: it reaps orphans.")
    } else {
        format!(
            "PID 1 is {name}, which does not reap orphans: processes whose parent exits will stay \
             zombies. Run it under reaper."
        )
    }
}

/// One line of the tree onto `out`: the columns, the command indented two spaces per level,
/// and the note. The command is cut to fit `width` columns of a terminal (a wide character
/// counts 2, never split; a combining one 0); the note, the answer to "whose zombie is this",
/// is never cut, and the command beside it keeps at least 16 columns (a comm's).
fn line(out: &mut String, p: &Entry, depth: usize, note: &str, width: usize) {
    let start = out.len();
    let age = p.age.map_or_else(|| "?".to_owned(), age);
    let uid = p.uid.map_or_else(|| "?".to_owned(), |u| u.to_string());
    *out += &format!("{:>7} {:>7} {} {age:>6} {uid:>5} ", p.pid, p.ppid, p.state);
    // ASCII so far: one byte, one column. Deeper than the line is wide shows nothing more (and
    // would cost quadratic time).
    let used = out.len() - start;
    out.extend(std::iter::repeat_n(' ', (depth * 2).min(width.saturating_sub(used))));
    let used = out.len() - start + if note.is_empty() { 0 } else { text::width(note) + 2 };
    let room = width.saturating_sub(used);
    let room = if note.is_empty() { room } else { room.max(16) };
    let bracketed;
    let command = if p.cmdline.is_empty() {
        bracketed = format!("[{}]", p.comm);
        &bracketed
    } else {
        &p.cmdline
    };
    *out += text::fit(command, room);
    if !note.is_empty() {
        *out += "  ";
        *out += note;
    }
    out.push('\n');
}

/// A /proc/PID/cmdline as one printable line: the NULs between arguments become spaces, and
/// the rest goes through [`text::printable`] (a newline in an argument, an escape sequence, a
/// bidi override, invalid UTF-8: `?`), so that each process is one line and nothing drives the
/// terminal.
pub fn command_line(mut bytes: Vec<u8>) -> String {
    if bytes.last() == Some(&0) {
        bytes.pop();
    }
    for b in &mut bytes {
        if *b == 0 {
            *b = b' ';
        }
    }
    text::printable(&bytes)
}

/// `42s`, `12m05s`, `3h07m`, `12d03h`: two units at most, at most 6 columns below 1000 days.
pub fn age(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m{s:02}s"),
        (0, _, _) => format!("{h}h{m:02}m"),
        _ => format!("{d}d{h:02}h"),
    }
}

/// The real uid: the first number of the `Uid:` line of /proc/PID/status.
pub fn parse_uid(status: &str) -> Option<u32> {
    let uid =
        number(status.split('\n').find_map(|l| l.strip_prefix("Uid:"))?.split_ascii_whitespace().next()?)?;
    u32::try_from(uid).ok()
}

/// /proc/uptime's first number in hundredths of a second (by hand: float parsing costs binary
/// size, and the kernel always prints two decimals).
pub fn parse_uptime(uptime: &str) -> Option<u64> {
    let (secs, frac) = uptime.split_ascii_whitespace().next()?.split_once('.')?;
    number(secs)?.checked_mul(100)?.checked_add(number(frac.get(..2)?)?)
}

/// Seconds between a start time in clock ticks after boot and an uptime in hundredths.
pub fn age_secs(start_ticks: u64, uptime_cs: u64, hz: u64) -> u64 {
    uptime_cs.saturating_sub(start_ticks.saturating_mul(100) / hz.max(1)) / 100
}

/// Reads a /proc file into `buf`. Not `std::fs::read`: that stats the file first for a size
/// procfs does not know, and reads once more to see the end. procfs fills each read(2) as far
/// as the file goes, so a short read is the end: open, read, close. (No EINTR: reaper keeps
/// every signal blocked.)
fn slurp(path: &str, buf: &mut Vec<u8>) -> std::io::Result<()> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    buf.clear();
    loop {
        let len = buf.len();
        buf.resize(len + 4096, 0);
        match file.read(&mut buf[len..]) {
            Ok(n) => {
                buf.truncate(len + n);
                if n < 4096 {
                    return Ok(());
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Every process in /proc. Fails only when /proc itself is missing or unreadable.
pub fn read_proc() -> Result<Vec<Entry>, Error> {
    let unreadable = |what, e| {
        Error::Start(format!("/proc is not mounted or not readable: {what}: {}", crate::error::os(e)))
    };
    let mut buf = Vec::new();
    slurp("/proc/uptime", &mut buf).map_err(|e| unreadable("/proc/uptime", e))?;
    // Unparsable (never seen): every age shows as `?`.
    let uptime = parse_uptime(&String::from_utf8_lossy(&buf));
    // sysconf(_SC_CLK_TCK) reads the same auxiliary vector entry, and in musl it pulls in the
    // whole sysconf table (1 KB).
    // SAFETY: getauxval only reads the auxiliary vector.
    #[allow(clippy::unnecessary_cast)] // c_ulong is u64 here, u32 on 32-bit targets
    let hz = match unsafe { libc::getauxval(libc::AT_CLKTCK) } {
        0 => 100,
        hz => hz as u64,
    };
    let id = |path: &str| std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()));
    let me = id("/proc/self/exe");
    let mut procs = Vec::new();
    for entry in std::fs::read_dir("/proc").map_err(|e| unreadable("/proc", e))?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(number).and_then(|n| i32::try_from(n).ok())
        else {
            continue;
        };
        let mut path = format!("/proc/{pid}/");
        let dir = path.len();
        let mut p = Entry { pid, state: '?', ..Entry::default() };
        match slurp(name(&mut path, dir, "stat"), &mut buf) {
            Ok(()) => {
                if let Some((stat, comm)) = procfs::parse_stat(&buf) {
                    (p.comm, p.state, p.ppid, p.age) = (
                        text::printable(comm),
                        char::from(stat.state),
                        stat.ppid,
                        uptime.map(|u| age_secs(stat.start, u, hz)),
                    );
                }
            }
            // It exited since readdir: nothing to show.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(_) => {}
        }
        if slurp(name(&mut path, dir, "status"), &mut buf).is_ok() {
            p.uid = parse_uid(&String::from_utf8_lossy(&buf));
        }
        if slurp(name(&mut path, dir, "cmdline"), &mut buf).is_ok() {
            p.cmdline = command_line(std::mem::take(&mut buf));
        }
        // Needs ptrace access (same user, or CAP_SYS_PTRACE); without it: not known as reaper.
        p.reaper = me.is_some() && id(name(&mut path, dir, "exe")) == me;
        procs.push(p);
    }
    Ok(procs)
}

/// `path` cut back to its first `dir` bytes, then `file`: one allocation for every path.
fn name<'a>(path: &'a mut String, dir: usize, file: &str) -> &'a str {
    path.truncate(dir);
    path.push_str(file);
    path
}

/// Columns of the terminal on stdout, or 80 when stdout is not a terminal.
fn width() -> usize {
    // SAFETY: winsize is plain old data; TIOCGWINSZ fills it in or fails.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: ioctl(TIOCGWINSZ) with a valid pointer to a winsize.
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0;
    if ok && ws.ws_col > 0 { ws.ws_col as usize } else { 80 }
}

/// Prints the listing. `Ok(false)` when there are more than `max_zombies` zombies.
pub fn main(max_zombies: Option<u64>) -> Result<bool, Error> {
    let memory = crate::cgroup::Cgroup::find()
        .and_then(|cg| crate::cgroup::summary(cg.current(), cg.limit(), cg.oom_kills()));
    let (text, zombies) = render_with(read_proc()?, width(), memory);
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    match max_zombies {
        Some(max) if zombies as u64 > max => {
            let _ = writeln!(
                std::io::stderr(),
                "reaper: {zombies} zombie{}, more than --max-zombies {max}",
                if zombies == 1 { "" } else { "s" }
            );
            Ok(false)
        }
        _ => Ok(true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc(pid: i32, ppid: i32, state: char, comm: &str, cmdline: &str) -> Entry {
        Entry {
            pid,
            ppid,
            state,
            comm: comm.into(),
            cmdline: cmdline.into(),
            uid: Some(0),
            age: Some(5),
            reaper: false,
        }
    }

    fn lines(text: &str) -> Vec<&str> {
        text.lines().collect()
    }

    #[test]
    fn a_comm_from_stat_is_printable() {
        let stat = b"17 (\x1b]0;x\x07\n\xe2\x80\xae\xe4\xb8) S 1 17 17 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 42 1 2";
        let (_, comm) = procfs::parse_stat(stat).unwrap();
        assert_eq!(text::printable(comm), "?]0;x?????");
    }

    #[test]
    fn uid_uptime_and_age() {
        assert_eq!(parse_uid("Name:\tx\nUid:\t1000\t1001\t1000\t1000\nGid:\t0\n"), Some(1000));
        assert_eq!(parse_uid("Name:\tx\n"), None);
        assert_eq!(parse_uptime("12345.67 999.00\n"), Some(1_234_567));
        assert_eq!(parse_uptime("garbage"), None);
        // Started at tick 1000 (10 s after boot at 100 Hz), uptime 72.5 s: 62 s old.
        assert_eq!(age_secs(1000, 7250, 100), 62);
        assert_eq!(age_secs(u64::MAX, 100, 100), 0);
        assert_eq!(age_secs(5, 100, 0), 0);
        let ages: Vec<String> = [0, 59, 60, 3599, 3600, 86399, 86400 * 12 + 3 * 3600].map(age).into();
        assert_eq!(ages, ["0s", "59s", "1m00s", "59m59s", "1h00m", "23h59m", "12d03h"]);
    }

    #[test]
    fn the_memory_line_goes_above_the_counts() {
        let procs = vec![proc(1, 0, 'S', "init", "/sbin/init")];
        let (text, _) = render_with(procs, 80, Some("Memory (cgroup): 2 OOM kills.".into()));
        assert_eq!(
            lines(&text)[1..],
            [
                "      1       0 S     5s     0 /sbin/init",
                "Memory (cgroup): 2 OOM kills.",
                "1 process, 0 zombies",
                "PID 1 is init, an init: it reaps orphans.",
            ]
        );
    }

    #[test]
    fn tree_indents_children_under_their_parent_in_pid_order() {
        let procs = vec![
            proc(30, 1, 'S', "c", "c"),
            proc(1, 0, 'S', "init", "/sbin/init"),
            proc(20, 10, 'S', "b", "b --x"),
            proc(10, 1, 'S', "a", "a"),
            proc(99, 0, 'R', "exec", "exec'd from outside"),
        ];
        let (text, zombies) = render(procs, 80);
        assert_eq!(zombies, 0);
        assert_eq!(
            lines(&text),
            [
                "    PID    PPID S    AGE   UID COMMAND",
                "      1       0 S     5s     0 /sbin/init",
                "     10       1 S     5s     0   a",
                "     20      10 S     5s     0     b --x",
                "     30       1 S     5s     0   c",
                "     99       0 R     5s     0 exec'd from outside",
                "5 processes, 0 zombies",
                "PID 1 is init, an init: it reaps orphans.",
            ]
        );
    }

    #[test]
    fn zombies_name_their_parent_and_pid1_that_is_no_init_is_called_out() {
        let procs = vec![
            proc(1, 0, 'S', "python3", "python3 app.py"),
            proc(17, 1, 'S', "python3", "python3 worker.py"),
            proc(18, 17, 'Z', "sh", ""),
            proc(19, 1, 'Z', "curl", ""),
            proc(20, 0, 'Z', "probe", ""),
        ];
        let (text, zombies) = render(procs, 200);
        assert_eq!(zombies, 3);
        let l = lines(&text);
        assert_eq!(
            l[3],
            "     18      17 Z     5s     0     [sh]  zombie: parent 17 (python3) has not called wait()"
        );
        assert_eq!(
            l[4],
            "     19       1 Z     5s     0   [curl]  zombie: parent 1 (python3) has not called wait()"
        );
        assert_eq!(
            l[5],
            "     20       0 Z     5s     0 [probe]  zombie: its parent is outside this PID namespace"
        );
        assert_eq!(l[6], "5 processes, 3 zombies");
        assert_eq!(
            l[7],
            "PID 1 is python3, which does not reap orphans: processes whose parent exits will stay \
             zombies. Run it under reaper."
        );
    }

    #[test]
    fn pid1_verdicts() {
        let reaper = Entry { reaper: true, ..proc(1, 0, 'S', "reaper", "/reaper -- app") };
        assert_eq!(pid1(Some(&reaper)), "PID 1 is reaper: it reaps orphans.");
        for (comm, cmdline) in
            [("tini", "/tini -- x"), ("docker-init", "/sbin/docker-init -- x"), ("catatonit", "/catatonit")]
        {
            assert!(pid1(Some(&proc(1, 0, 'S', comm, cmdline))).ends_with(", an init: it reaps orphans."));
        }
        assert!(
            pid1(Some(&proc(1, 0, 'S', "sleep", "sleep 1000"))).starts_with("PID 1 is sleep, which does not")
        );
        assert_eq!(pid1(None), "PID 1 is not visible in /proc.");
    }

    #[test]
    fn other_reapers_are_subreapers_but_not_the_listing_itself() {
        let r = |pid, ppid, cmdline: &str| Entry { reaper: true, ..proc(pid, ppid, 'S', "reaper", cmdline) };
        let procs = vec![
            r(1, 0, "/reaper -- sh"),
            r(5, 1, "/reaper -- app"),
            r(6, 1, "/reaper --ps"),
            r(7, 1, "/reaper -v --ps --max-zombies 3"),
        ];
        let (text, _) = render(procs, 100);
        let l = lines(&text);
        assert!(!l[1].contains("subreaper"), "{text}");
        assert!(l[2].ends_with("/reaper -- app  subreaper: reaps the orphans below it"), "{text}");
        assert!(!l[3].contains("subreaper") && !l[4].contains("subreaper"), "{text}");
    }

    #[test]
    fn commands_are_cut_to_the_width_but_zombie_notes_never() {
        let long = "x".repeat(300);
        let procs = vec![proc(1, 0, 'S', "sh", &long), proc(2, 1, 'Z', "child", "")];
        let (text, _) = render(procs, 50);
        assert_eq!(lines(&text)[0].len(), 38);
        assert_eq!(lines(&text)[1], format!("      1       0 S     5s     0 {}", "x".repeat(19)));
        // The zombie's note does not fit in 50 columns: the command keeps 16 characters, the note
        // stays whole.
        let (text, _) = render(vec![proc(1, 0, 'S', "sh", &long), proc(2, 1, 'Z', "child", &long)], 50);
        assert_eq!(
            lines(&text)[2],
            format!(
                "      2       1 Z     5s     0   {}  zombie: parent 1 (sh) has not called wait()",
                "x".repeat(16)
            )
        );
    }

    #[test]
    fn wide_characters_take_two_columns_and_are_never_split() {
        let cjk = "睡".repeat(60);
        let procs = vec![
            proc(1, 0, 'S', "sh", &cjk),
            proc(2, 1, 'S', "中文中文中", &cjk),
            proc(3, 2, 'Z', "z", &"x".repeat(100)),
        ];
        let (text, _) = render(procs, 50);
        let l = lines(&text);
        // 31 columns before the command, 19 left: 9 characters, the tenth would cross.
        assert_eq!(l[1], format!("      1       0 S     5s     0 {}", "睡".repeat(9)));
        assert_eq!(l[2], format!("      2       1 S     5s     0   {}", "睡".repeat(8)));
        // The note is 53 columns (its parent's name 10 of them, in 15 bytes): in 120, the
        // command gets 120 - 33 - 53.
        let (text, _) =
            render(vec![proc(2, 1, 'S', "中文中文中", &cjk), proc(3, 2, 'Z', "z", &"x".repeat(100))], 120);
        assert_eq!(
            lines(&text)[2],
            format!(
                "      3       2 Z     5s     0   {}  zombie: parent 2 (中文中文中) has not called wait()",
                "x".repeat(34)
            )
        );
    }

    #[test]
    fn unreadable_fields_show_as_question_marks_and_control_characters_are_replaced() {
        let procs = vec![
            Entry { pid: 1, state: '?', ..Entry::default() },
            proc(2, 1, 'S', "evil", &command_line(b"printf\0\x1b[2J\nrm\xc2\x9b1m\xc2\xa0\xff\0".to_vec())),
            Entry { cmdline: String::new(), ..proc(3, 1, 'I', "kworker/0:1", "") },
        ];
        let (text, _) = render(procs, 80);
        let l = lines(&text);
        assert_eq!(l[1], "      1       0 ?      ?     ? []");
        assert_eq!(l[2], "      2       1 S     5s     0   printf ?[2J?rm?1m\u{a0}?");
        assert_eq!(l[3], "      3       1 I     5s     0   [kworker/0:1]");
    }

    #[test]
    fn a_parent_cycle_is_left_out_and_does_not_hang() {
        let procs = vec![proc(5, 6, 'S', "a", "a"), proc(6, 5, 'S', "b", "b"), proc(7, 7, 'S', "c", "c")];
        let (text, _) = render(procs, 80);
        assert_eq!(lines(&text)[1..], ["0 processes, 0 zombies", "PID 1 is not visible in /proc."]);
    }

    #[test]
    fn a_deep_chain_does_not_overflow_the_stack() {
        let procs: Vec<Entry> = (1..20_000).map(|p| proc(p, p - 1, 'S', "s", "s")).collect();
        let (text, _) = render(procs, 80);
        assert!(text.contains("19999 processes, 0 zombies"));
        // The indentation stops at the edge: the deepest lines are 80 spaces and columns.
        assert!(text.lines().take(20_000).all(|l| l.len() <= 80));
        assert_eq!(text.lines().nth(19_000).map(str::len), Some(80));
    }

    #[test]
    fn the_options() {
        use crate::options::{Parsed, parse_with_env};
        use std::ffi::OsStr;
        let parse = |args: &[&str]| {
            let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
            parse_with_env(&args, &[("REAPER_PAUSE", OsStr::new("1"))])
        };
        assert_eq!(parse(&["--ps"]).unwrap(), Parsed::Ps { max_zombies: None });
        assert_eq!(parse(&["--max-zombies", "20", "--ps"]).unwrap(), Parsed::Ps { max_zombies: Some(20) });
        for (args, message) in [
            (&["--ps", "sleep", "1"][..], "--ps takes no COMMAND"),
            (&["--ps", "--", "sleep"], "--ps takes no COMMAND"),
            (&["--ps", "--pause"], "--ps takes no other option than --max-zombies"),
            (&["-d", "--ps"], "--ps takes no other option than --max-zombies"),
            (&["--max-zombies", "1", "--", "true"], "--max-zombies needs --ps or --probe"),
            (&["--ps", "--max-zombies", "-1"], "--max-zombies: invalid zombie count '-1' (0 or more)"),
        ] {
            assert_eq!(parse(args).unwrap_err().message(), message, "{args:?}");
        }
    }
}
