//! Opens the files the user names (`--stdout`, `--stderr`, `--pidfile`) without trusting what
//! other users put in the path: reaper often runs as root, and such paths often lie in /tmp.
//!
//! The rules (docs/daemons.md "Files reaper opens" states them for users), stricter than the kernel's
//! protected_symlinks / protected_regular=2 and applied whatever those sysctls say:
//! - a symbolic link, anywhere in the path, is followed only if it belongs to root or to
//!   reaper's effective user. reaper resolves the path itself, one name at a time, so no link
//!   escapes the check; links in /proc (/proc/self, /proc/PID/fd/N) belong to the process they
//!   describe and are followed by the kernel, as their targets need not be paths ("pipe:[7]");
//! - in a directory other users can write to (world-writable, or group-writable by a group
//!   other than root; sticky or not), an existing file must belong to root, to reaper's user or
//!   to the directory's owner, and a regular file there must have no other hard link;
//! - a log may be a regular file, a FIFO or a character device; a pidfile only a regular file,
//!   and never a symbolic link itself;
//! - nothing blocks: the open is non-blocking (a FIFO without a reader is an error, not a hang)
//!   and the descriptor is made blocking again for the command;
//! - a missing file is created with O_EXCL: whatever gets there first is refused or re-checked.

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, FcntlArg, OFlag, fcntl, openat};
use nix::sys::stat::{FileStat, Mode, fstat};
use nix::sys::statfs::{PROC_SUPER_MAGIC, fstatfs};

/// What the file is for: the types it may have, how it is opened and created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// `--stdout`, `--stderr`: appended to; created 0640.
    Log,
    /// `--pidfile`: read and written; created 0644.
    Pidfile,
    /// `--follow-pidfile`: someone else's file, only read, never created; a regular file,
    /// reached through trusted links only (its first line is quoted in errors: another user's
    /// link to a root-only file must not put that file's line in the log).
    Followed,
    /// The termination log (`/dev/termination-log`): only written, never created (it is
    /// reaper's only when the orchestrator put it there); a regular file.
    Report,
}

/// The facts about an inode the rules look at (from stat(2)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Node {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: libc::nlink_t,
}

impl From<FileStat> for Node {
    fn from(st: FileStat) -> Node {
        Node { mode: st.st_mode, uid: st.st_uid, gid: st.st_gid, nlink: st.st_nlink }
    }
}

/// Whether reaper follows a symbolic link owned by `owner`.
pub fn trusted_link(owner: u32, euid: u32) -> bool {
    owner == 0 || owner == euid
}

/// Whether users other than `dir`'s owner and root may create and replace names in it.
pub fn shared(dir: &Node) -> bool {
    dir.mode & 0o002 != 0 || (dir.mode & 0o020 != 0 && dir.gid != 0)
}

/// Why the existing `file`, found in `dir`, must not be opened for `purpose` by a reaper
/// running as `euid`; `None` if it may. Without `dir` (a file reached through a /proc link),
/// only its type counts.
pub fn refusal(file: &Node, dir: Option<&Node>, euid: u32, purpose: Purpose) -> Option<String> {
    let kind = file.mode & libc::S_IFMT;
    let allowed = match purpose {
        Purpose::Log => [libc::S_IFREG, libc::S_IFIFO, libc::S_IFCHR].contains(&kind),
        Purpose::Pidfile | Purpose::Followed | Purpose::Report => kind == libc::S_IFREG,
    };
    if !allowed {
        let wanted = match purpose {
            Purpose::Log => "a regular file, a FIFO or a character device",
            Purpose::Pidfile | Purpose::Followed | Purpose::Report => "a regular file",
        };
        return Some(format!("is {}, not {wanted}", kind_name(kind)));
    }
    // Elsewhere nobody else could have put the file there; in a directory another user owns,
    // that user could (a hard link to a file of root's, where fs.protected_hardlinks is 0).
    let dir = dir.filter(|d| shared(d) || !trusted_link(d.uid, euid))?;
    let hard_link = kind == libc::S_IFREG && file.nlink > 1;
    if purpose == Purpose::Followed {
        // The daemon may well run as another user and own its pidfile: only read, only a
        // hard link could make it show someone else's file.
        return hard_link.then(|| {
            "has other hard links, in a directory other users can write to: refusing it".to_owned()
        });
    }
    if ![0, euid, dir.uid].contains(&file.uid) {
        return Some(format!(
            "belongs to uid {} in a directory other users can write to: refusing it (remove it, \
             and reaper creates its own)",
            file.uid
        ));
    }
    if hard_link {
        return Some("has other hard links, in a directory other users can write to: refusing it".to_owned());
    }
    None
}

fn kind_name(kind: u32) -> &'static str {
    match kind {
        libc::S_IFDIR => "a directory",
        libc::S_IFBLK => "a block device",
        libc::S_IFSOCK => "a socket",
        libc::S_IFIFO => "a FIFO",
        libc::S_IFCHR => "a character device",
        libc::S_IFLNK => "a symbolic link",
        _ => "of an unknown type",
    }
}

/// The kernel's limit on links followed in one lookup (MAXSYMLINKS).
const MAX_LINKS: usize = 40;
/// How many times a name that changed between our looks is looked at again.
const ATTEMPTS: usize = 5;

enum Fail {
    /// The name was replaced between two steps: look again.
    Retry,
    Refused(String),
}

impl From<Errno> for Fail {
    fn from(e: Errno) -> Fail {
        Fail::Refused(text(e))
    }
}

/// "No such file or directory", as reaper's other start failures say it.
fn text(e: Errno) -> String {
    crate::error::os(e)
}

/// Opens (or creates) `path` for `purpose` under the rules above. The error is the reason,
/// without the path.
pub fn open(path: &Path, purpose: Purpose) -> Result<File, String> {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    let bytes = path.as_os_str().as_bytes();
    let mut todo = Vec::new();
    push(&mut todo, bytes);
    let mut dir = start(bytes)?;
    let (mut links, mut retries) = (0, 0);
    while let Some(name) = todo.pop() {
        let last = todo.is_empty();
        let node = match openat(
            &dir,
            name.as_slice(),
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) if last && matches!(purpose, Purpose::Followed | Purpose::Report) => {
                return Err(text(Errno::ENOENT));
            }
            Err(Errno::ENOENT) if last => match create(&dir, &name, purpose) {
                Err(Errno::EEXIST) if retries < ATTEMPTS => {
                    retries += 1;
                    todo.push(name);
                    continue;
                }
                r => return r.map_err(text),
            },
            Err(e) => return Err(text(e)),
        };
        let st = fstat(&node).map_err(text)?;
        let lossy = || String::from_utf8_lossy(&name).into_owned();
        let result = match st.st_mode & libc::S_IFMT {
            libc::S_IFLNK if purpose == Purpose::Pidfile && last => {
                return Err("is a symbolic link, refusing to follow it".to_owned());
            }
            libc::S_IFLNK => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(text(Errno::ELOOP));
                }
                if !trusted_link(st.st_uid, euid) {
                    return Err(format!(
                        "{} is a symbolic link owned by uid {}, not by root or reaper's uid {euid}: \
                         refusing to follow it",
                        lossy(),
                        st.st_uid
                    ));
                }
                if on_procfs(&dir) {
                    // The kernel's own links: nobody can plant one, and many name no path
                    // ("pipe:[7]"), so the kernel follows them, checked by owner as above.
                    if last {
                        open_existing(&dir, &name, None, euid, purpose)
                    } else {
                        dir = openat(
                            &dir,
                            name.as_slice(),
                            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                            Mode::empty(),
                        )
                        .map_err(text)?;
                        continue;
                    }
                } else {
                    // The link we checked, read through its own descriptor: not a later one.
                    let target = read_link(&node).map_err(text)?;
                    if target.starts_with(b"/") {
                        dir = start(b"/")?;
                    }
                    push(&mut todo, &target);
                    continue;
                }
            }
            libc::S_IFDIR if !last => {
                dir = node;
                continue;
            }
            _ if !last => return Err(text(Errno::ENOTDIR)),
            _ => open_existing(&dir, &name, Some(&st), euid, purpose),
        };
        match result {
            Ok(file) => return Ok(file),
            Err(Fail::Retry) if retries < ATTEMPTS => {
                retries += 1;
                todo.push(name);
            }
            Err(Fail::Retry) => return Err(format!("{} kept changing while being opened", lossy())),
            Err(Fail::Refused(why)) => return Err(why),
        }
    }
    // Only a path without a single name gets here ("/" ends in a slash: "." is looked at).
    Err(text(Errno::EISDIR))
}

/// The names in `path`, pushed so that the first is popped first. A trailing slash means
/// "a directory", as for the kernel: "." stands for it.
fn push(todo: &mut Vec<Vec<u8>>, path: &[u8]) {
    if path.ends_with(b"/") {
        todo.push(b".".to_vec());
    }
    todo.extend(path.split(|&b| b == b'/').filter(|c| !c.is_empty()).rev().map(<[u8]>::to_vec));
}

/// The target of the symbolic link `link` (an O_PATH descriptor of the link itself). Raw
/// readlinkat: nix's grows its buffer through fstatat, which costs binary for targets longer
/// than PATH_MAX, which no path resolution accepts anyway.
fn read_link(link: &OwnedFd) -> Result<Vec<u8>, Errno> {
    use std::os::fd::AsRawFd;
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: readlinkat(2) with an empty path reads the link `link` refers to, writing at
    // most buf.len() bytes into buf.
    let n = unsafe { libc::readlinkat(link.as_raw_fd(), c"".as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    let n = usize::try_from(n).map_err(|_| Errno::last())?;
    if n >= buf.len() {
        return Err(Errno::ENAMETOOLONG);
    }
    buf.truncate(n);
    Ok(buf)
}

/// The directory a path starts from: the root for an absolute one, else the working directory.
fn start(path: &[u8]) -> Result<OwnedFd, String> {
    let from: &[u8] = if path.starts_with(b"/") { b"/" } else { b"." };
    openat(AT_FDCWD, from, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()).map_err(text)
}

fn on_procfs(dir: &OwnedFd) -> bool {
    fstatfs(dir).is_ok_and(|fs| fs.filesystem_type() == PROC_SUPER_MAGIC)
}

fn flags(purpose: Purpose) -> OFlag {
    let access = match purpose {
        Purpose::Log => OFlag::O_WRONLY | OFlag::O_APPEND,
        // Not O_TRUNC: nothing is cut before the checks on the opened file passed.
        Purpose::Report => OFlag::O_WRONLY,
        Purpose::Pidfile => OFlag::O_RDWR,
        Purpose::Followed => OFlag::O_RDONLY,
    };
    // Non-blocking: a FIFO without a reader, or a terminal waiting for carrier, must fail
    // rather than hang a reaper whose signals are already blocked.
    access | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC
}

fn create(dir: &OwnedFd, name: &[u8], purpose: Purpose) -> Result<File, Errno> {
    let mode = match purpose {
        // Logs are often not for everyone's eyes.
        Purpose::Log | Purpose::Report => 0o640,
        Purpose::Pidfile | Purpose::Followed => 0o644,
    };
    let fd = openat(
        dir,
        name,
        flags(purpose) | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW,
        Mode::from_bits_truncate(mode),
    )?;
    blocking(fd)
}

/// Opens the existing `name` in `dir`. `seen`: what the name was when we looked (`None`: a
/// /proc link, followed). The rules are checked on what we looked at, so that nothing refused
/// is even opened, then on what we opened, which is what counts.
fn open_existing(
    dir: &OwnedFd,
    name: &[u8],
    seen: Option<&FileStat>,
    euid: u32,
    purpose: Purpose,
) -> Result<File, Fail> {
    // A file reached through a /proc link is one a trusted process has open: the directory
    // rules do not apply (its directory is /proc/PID/fd, not where the file lies).
    let in_dir = match seen {
        Some(_) => Some(Node::from(fstat(dir)?)),
        None => None,
    };
    if let Some(st) = seen {
        if let Some(why) = refusal(&Node::from(*st), in_dir.as_ref(), euid, purpose) {
            return Err(Fail::Refused(why));
        }
    }
    let nofollow = if seen.is_some() { OFlag::O_NOFOLLOW } else { OFlag::empty() };
    let fd = match openat(dir, name, flags(purpose) | nofollow, Mode::empty()) {
        Ok(fd) => fd,
        // Gone, or now a symbolic link, since we looked.
        Err(Errno::ENOENT | Errno::ELOOP) if seen.is_some() => return Err(Fail::Retry),
        Err(Errno::ENXIO) if seen.is_some_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFIFO) => {
            return Err(Fail::Refused("is a FIFO with no reader (start its reader first)".to_owned()));
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(why) = refusal(&Node::from(fstat(&fd)?), in_dir.as_ref(), euid, purpose) {
        return Err(Fail::Refused(why));
    }
    Ok(blocking(fd)?)
}

/// Clears O_NONBLOCK: the open must not block, but the command expects ordinary writes.
fn blocking(fd: OwnedFd) -> Result<File, Errno> {
    let fl = OFlag::from_bits_truncate(fcntl(fd.as_fd(), FcntlArg::F_GETFL)?);
    fcntl(fd.as_fd(), FcntlArg::F_SETFL(fl - OFlag::O_NONBLOCK))?;
    Ok(File::from(fd))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt, symlink};
    use std::path::PathBuf;

    const REG: u32 = libc::S_IFREG | 0o644;
    const ME: u32 = 1000;
    const OTHER: u32 = 65534;

    fn file(mode: u32, uid: u32) -> Node {
        Node { mode, uid, gid: uid, nlink: 1 }
    }

    fn dir(mode: u32, uid: u32, gid: u32) -> Node {
        Node { mode: libc::S_IFDIR | mode, uid, gid, nlink: 2 }
    }

    #[test]
    fn links_of_root_and_of_reapers_user_are_trusted() {
        assert!(trusted_link(0, ME));
        assert!(trusted_link(ME, ME));
        assert!(!trusted_link(OTHER, ME));
        assert!(trusted_link(0, 0));
        assert!(!trusted_link(ME, 0));
    }

    #[test]
    fn shared_means_writable_by_others_or_a_group_other_than_root() {
        assert!(shared(&dir(0o1777, 0, 0)), "/tmp");
        assert!(shared(&dir(0o777, 0, 0)), "world-writable, not sticky");
        assert!(shared(&dir(0o3775, 0, 50)), "group-writable by a group");
        assert!(shared(&dir(0o775, ME, ME)), "group-writable, not sticky");
        assert!(!shared(&dir(0o775, 0, 0)), "group-writable by root's group");
        assert!(!shared(&dir(0o755, ME, ME)));
        assert!(!shared(&dir(0o700, 0, 0)));
        assert!(!shared(&dir(0o1755, 0, 0)), "sticky alone");
        assert!(shared(&dir(0o702, 0, 0)), "o+w alone");
        assert!(shared(&dir(0o720, 0, 7)), "g+w alone");
    }

    #[test]
    fn logs_may_be_regular_files_fifos_or_character_devices() {
        let home = dir(0o755, ME, ME);
        for kind in [libc::S_IFREG, libc::S_IFIFO, libc::S_IFCHR] {
            assert_eq!(refusal(&file(kind | 0o666, ME), Some(&home), ME, Purpose::Log), None, "{kind:o}");
        }
        for (kind, name) in [
            (libc::S_IFDIR, "is a directory"),
            (libc::S_IFBLK, "is a block device"),
            (libc::S_IFSOCK, "is a socket"),
            (libc::S_IFLNK, "is a symbolic link"),
            (0, "is of an unknown type"),
        ] {
            assert_eq!(
                refusal(&file(kind | 0o644, ME), Some(&home), ME, Purpose::Log),
                Some(format!("{name}, not a regular file, a FIFO or a character device")),
            );
        }
    }

    #[test]
    fn pidfiles_must_be_regular_files() {
        let home = dir(0o755, ME, ME);
        assert_eq!(refusal(&file(REG, ME), Some(&home), ME, Purpose::Pidfile), None);
        for (kind, name) in [(libc::S_IFIFO, "a FIFO"), (libc::S_IFCHR, "a character device")] {
            assert_eq!(
                refusal(&file(kind | 0o644, ME), None, ME, Purpose::Pidfile),
                Some(format!("is {name}, not a regular file")),
            );
        }
    }

    #[test]
    fn in_a_shared_directory_only_trusted_owners_files_are_taken() {
        let tmp = dir(0o1777, 0, 0);
        for owner in [0, ME] {
            assert_eq!(refusal(&file(REG, owner), Some(&tmp), ME, Purpose::Log), None, "uid {owner}");
        }
        let why = refusal(&file(libc::S_IFREG | 0o666, OTHER), Some(&tmp), ME, Purpose::Log);
        assert!(
            why.as_deref().is_some_and(|w| w.starts_with("belongs to uid 65534 in a directory")),
            "{why:?}"
        );
        let fifo = refusal(&file(libc::S_IFIFO | 0o666, OTHER), Some(&tmp), ME, Purpose::Log);
        assert!(fifo.is_some(), "a FIFO of another user");
        assert!(refusal(&file(REG, OTHER), Some(&tmp), ME, Purpose::Pidfile).is_some(), "a pidfile too");
        // The directory's owner is trusted with what is in it (the kernel's rule).
        let theirs = dir(0o1777, OTHER, OTHER);
        assert_eq!(refusal(&file(REG, OTHER), Some(&theirs), ME, Purpose::Log), None);
        // Outside a shared directory, owners do not matter (a log chowned to a service user).
        let var_log = dir(0o755, 0, 0);
        assert_eq!(refusal(&file(REG, OTHER), Some(&var_log), 0, Purpose::Log), None);
        // Through a /proc link there is no directory to judge.
        assert_eq!(refusal(&file(REG, OTHER), None, 0, Purpose::Log), None);
    }

    #[test]
    fn in_a_shared_directory_a_hard_linked_file_is_refused() {
        let linked = Node { nlink: 2, ..file(REG, 0) };
        assert_eq!(
            refusal(&linked, Some(&dir(0o1777, 0, 0)), 0, Purpose::Log).as_deref(),
            Some("has other hard links, in a directory other users can write to: refusing it")
        );
        assert_eq!(refusal(&linked, Some(&dir(0o755, 0, 0)), 0, Purpose::Log), None, "not shared");
        // Devices and FIFOs: only their owner counts (mknod needs privilege).
        let fifo = Node { nlink: 2, ..file(libc::S_IFIFO | 0o600, 0) };
        assert_eq!(refusal(&fifo, Some(&dir(0o1777, 0, 0)), 0, Purpose::Log), None);
    }

    #[test]
    fn paths_split_into_names_first_popped_first() {
        let names = |p: &str| {
            let mut todo = vec![b"rest".to_vec()];
            push(&mut todo, p.as_bytes());
            todo.into_iter().rev().map(|n| String::from_utf8(n).unwrap()).collect::<Vec<_>>()
        };
        assert_eq!(names("/a//b/./c"), ["a", "b", ".", "c", "rest"]);
        assert_eq!(names("a/b/"), ["a", "b", ".", "rest"], "a trailing slash asks for a directory");
        assert_eq!(names("/"), [".", "rest"]);
        assert_eq!(names("x"), ["x", "rest"]);
    }

    // --- open() on real files (tests/daemon.rs covers the same through reaper) -------------

    fn tempdir(tag: &str) -> PathBuf {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let d = std::env::temp_dir().join(format!(
            "reaper-safe-open-{}-{}-{tag}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn nonblocking(f: &File) -> bool {
        let fl = fcntl(f.as_fd(), FcntlArg::F_GETFL).unwrap();
        OFlag::from_bits_truncate(fl).contains(OFlag::O_NONBLOCK)
    }

    #[test]
    fn creates_a_missing_log_appends_to_an_existing_one() {
        let d = tempdir("create");
        let p = d.join("new.log");
        open(&p, Purpose::Log).unwrap().write_all(b"one\n").unwrap();
        open(&p, Purpose::Log).unwrap().write_all(b"two\n").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "one\ntwo\n");
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o7777 & !0o640, 0, "created 0640 minus umask");
        let pid = open(&d.join("x.pid"), Purpose::Pidfile).unwrap();
        assert_eq!(pid.metadata().unwrap().mode() & 0o7777 & !0o644, 0, "created 0644 minus umask");
    }

    #[test]
    fn follows_own_links_relative_and_absolute_and_dot_dot() {
        let d = tempdir("links");
        std::fs::create_dir(d.join("sub")).unwrap();
        std::fs::write(d.join("target.log"), "").unwrap();
        symlink("../target.log", d.join("sub/rel")).unwrap();
        symlink(d.join("sub"), d.join("abs-dir")).unwrap();
        symlink("sub/rel", d.join("chain")).unwrap();
        for p in ["sub/rel", "abs-dir/rel", "chain", "abs-dir/../target.log"] {
            let mut f = open(&d.join(p), Purpose::Log).unwrap_or_else(|e| panic!("{p}: {e}"));
            writeln!(f, "{p}").unwrap();
        }
        assert_eq!(
            std::fs::read_to_string(d.join("target.log")).unwrap(),
            "sub/rel\nabs-dir/rel\nchain\nabs-dir/../target.log\n"
        );
        // A dangling link of ours is followed, and its target created.
        symlink("made-by-link.log", d.join("dangling")).unwrap();
        open(&d.join("dangling"), Purpose::Log).unwrap();
        assert!(d.join("made-by-link.log").is_file());
    }

    #[test]
    fn relative_paths_start_from_the_working_directory() {
        let f = open(Path::new("."), Purpose::Log).unwrap_err();
        assert!(f.starts_with("is a directory"), "{f}");
    }

    #[test]
    fn directories_loops_and_files_as_directories_are_errors() {
        let d = tempdir("errors");
        std::fs::write(d.join("f"), "").unwrap();
        symlink("loop-b", d.join("loop-a")).unwrap();
        symlink("loop-a", d.join("loop-b")).unwrap();
        let err = |p: &str| open(&d.join(p), Purpose::Log).unwrap_err();
        // The C library's words (musl: "Symbolic link loop"; glibc: "Too many levels of …").
        assert_eq!(err("loop-a"), text(Errno::ELOOP));
        assert!(err("f/x").starts_with("Not a directory"), "{}", err("f/x"));
        assert!(err("f/").starts_with("Not a directory"), "{}", err("f/"));
        assert!(err("missing/x").starts_with("No such file"), "{}", err("missing/x"));
        assert!(err("").starts_with("is a directory"), "the directory itself: {}", err(""));
        assert_eq!(open(Path::new("/"), Purpose::Log).unwrap_err(), err(""));
        let sym = open(&d.join("loop-a"), Purpose::Pidfile).unwrap_err();
        assert_eq!(sym, "is a symbolic link, refusing to follow it");
    }

    #[test]
    fn a_fifo_never_blocks_and_the_descriptor_blocks_again() {
        let d = tempdir("fifo");
        let fifo = d.join("fifo");
        nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o600)).unwrap();
        assert_eq!(
            open(&fifo, Purpose::Log).unwrap_err(),
            "is a FIFO with no reader (start its reader first)"
        );
        let reader = std::fs::File::options().read(true).custom_flags(libc::O_NONBLOCK).open(&fifo).unwrap();
        let f = open(&fifo, Purpose::Log).unwrap();
        assert!(!nonblocking(&f), "the command gets a blocking descriptor");
        drop(reader);
        let created = open(&d.join("plain.log"), Purpose::Log).unwrap();
        assert!(!nonblocking(&created));
    }

    #[test]
    fn proc_links_are_followed() {
        // /proc/self/fd/N names "pipe:[…]": only the kernel can follow it.
        let (r, w) = nix::unistd::pipe().unwrap();
        let path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&w));
        let mut f = open(Path::new(&path), Purpose::Log).unwrap();
        f.write_all(b"through /proc\n").unwrap();
        drop((f, w));
        let mut got = String::new();
        std::io::Read::read_to_string(&mut File::from(r), &mut got).unwrap();
        assert_eq!(got, "through /proc\n");
        assert!(open(Path::new("/dev/null"), Purpose::Log).is_ok());
    }

    #[test]
    fn other_users_links_and_files_are_refused() {
        // SAFETY: geteuid(2).
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("SKIPPED: needs root to chown");
            return;
        }
        let d = tempdir("hostile");
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let secret = d.join("secret");
        std::fs::write(&secret, "secret\n").unwrap();
        for (name, to) in [("planted", secret.clone()), ("planted-dir", d.clone())] {
            symlink(&to, d.join(name)).unwrap();
            std::os::unix::fs::lchown(d.join(name), Some(OTHER), Some(OTHER)).unwrap();
        }
        let want =
            "is a symbolic link owned by uid 65534, not by root or reaper's uid 0: refusing to follow it";
        let e = open(&d.join("planted"), Purpose::Log).unwrap_err();
        assert_eq!(e, format!("planted {want}"));
        let e = open(&d.join("planted-dir/new.log"), Purpose::Log).unwrap_err();
        assert_eq!(e, format!("planted-dir {want}"));
        assert!(!d.join("new.log").exists());
        let theirs = d.join("theirs.log");
        std::fs::write(&theirs, "").unwrap();
        std::os::unix::fs::chown(&theirs, Some(OTHER), Some(OTHER)).unwrap();
        assert!(open(&theirs, Purpose::Log).unwrap_err().starts_with("belongs to uid 65534"));
        assert!(open(&theirs, Purpose::Pidfile).unwrap_err().starts_with("belongs to uid 65534"));
        std::fs::hard_link(&secret, d.join("hard")).unwrap();
        assert!(open(&d.join("hard"), Purpose::Log).unwrap_err().starts_with("has other hard links"));
        assert_eq!(std::fs::read_to_string(&secret).unwrap(), "secret\n");
        // Not shared: the same file is taken.
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(open(&theirs, Purpose::Log).is_ok());
    }
}
