//! `--user` and `--no-new-privs`, for each command reaper starts (reaper itself stays as it
//! is: it must be able to signal and reap every process). Everything that reads or can fail
//! on input (the names, /etc/passwd, /etc/group, the environment) happens once, before any
//! fork, in [`Privs::prepare`]; [`Privs::apply`] runs in the child between clone (or fork) and
//! exec and makes raw system calls only: no allocation, no lock, and none of the C library's
//! set*id wrappers (musl's __synccall and glibc's setxid broadcast the change to every thread
//! with signals, which must not run in a CLONE_VM child: it shares reaper's memory, spawn.rs).

use std::ffi::OsStr;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;

use nix::errno::Errno;

use crate::error::Error;
use crate::text::printable;
use crate::user::{self, Spec, Target};

/// The most of /etc/passwd or /etc/group read: a directory exported with every account of an
/// organisation fits, a file that never ends (a device, a FIFO is refused anyway) does not.
const MAX_DB: u64 = 16 << 20;

// The steps of `apply`, as the child reports the one that failed (spawn.rs's report record).
const NO_NEW_PRIVS: u8 = b'n';
const BOUNDING: u8 = b'b';
const SETGROUPS: u8 = b'G';
const SETGID: u8 = b'g';
const SETUID: u8 = b'u';
const VERIFY: u8 = b'v';
const INHERITABLE: u8 = b'i';
const AMBIENT: u8 = b'a';

#[cfg(not(any(target_arch = "x86", target_arch = "arm")))]
use libc::{SYS_setgroups as SYS_SETGROUPS, SYS_setresgid as SYS_SETRESGID, SYS_setresuid as SYS_SETRESUID};
/// 32-bit x86 and ARM have 16-bit ids in the old calls; the `32` ones take full ids.
#[cfg(any(target_arch = "x86", target_arch = "arm"))]
use libc::{
    SYS_setgroups32 as SYS_SETGROUPS, SYS_setresgid32 as SYS_SETRESGID, SYS_setresuid32 as SYS_SETRESUID,
};

/// What the commands start with. `Privs::default()`: as reaper is.
#[derive(Debug, Default)]
pub struct Privs {
    switch: Option<Switch>,
    no_new_privs: bool,
}

#[derive(Debug)]
struct Switch {
    uid: u32,
    gid: u32,
    groups: Vec<libc::gid_t>,
    /// A non-root target loses every capability: bounding, inheritable and ambient sets (the
    /// kernel clears permitted and effective at setuid; clearing them again costs nothing and
    /// covers a reaper started with SECBIT_KEEP_CAPS). Root keeps what reaper has.
    drop_caps: bool,
    env: Vec<(&'static str, Option<Vec<u8>>)>,
    /// "app (uid 1000, gid 1000)", for messages.
    who: String,
    /// /proc/self/setgroups says "deny" (an unprivileged user namespace): setgroups will fail.
    setgroups_denied: bool,
    /// The kernel's last capability, for clearing the bounding set.
    last_cap: libc::c_ulong,
    /// Room for getgroups(2) in the child (allocated before clone or fork), as many as
    /// `groups`. Cells: the child writes into it through the shared `&Privs` (with CLONE_VM,
    /// into reaper's own copy, which reaper never reads).
    scratch: Vec<std::cell::Cell<libc::gid_t>>,
}

impl Switch {
    /// Whether the process's supplementary groups are exactly `groups` (the kernel may list
    /// them in another order in a user namespace). Async-signal-safe: getgroups into
    /// `scratch`, no allocation.
    fn groups_took_effect(&self) -> bool {
        let room = self.scratch.len();
        // SAFETY: getgroups(2) writes at most `room` gids into `scratch` (Cell<gid_t> has
        // gid_t's layout and may be written through a shared reference).
        let n = unsafe { libc::getgroups(room as libc::c_int, self.scratch.as_ptr() as *mut libc::gid_t) };
        n >= 0
            && n as usize == room
            && self.scratch.iter().all(|g| self.groups.binary_search(&g.get()).is_ok())
    }
}

impl Privs {
    /// Resolves `spec` (named by `source`: --user or REAPER_USER) against /etc/passwd and
    /// /etc/group. An unknown name is a usage error.
    pub fn prepare(spec: Option<(&Spec, &str)>, no_new_privs: bool) -> Result<Privs, Error> {
        let Some((spec, source)) = spec else {
            return Ok(Privs { switch: None, no_new_privs });
        };
        let (passwd, passwd_err) = read_db("/etc/passwd");
        let (group, group_err) = read_db("/etc/group");
        let target = user::resolve(spec, &passwd, &group).map_err(|why| {
            let unread = [passwd_err.as_deref(), group_err.as_deref()].into_iter().flatten();
            let unread: String = unread.map(|e| format!("; {e}")).collect();
            Error::Usage(format!("{source}: {why}{unread}"))
        })?;
        if let (Some(e), user::Id::Num(uid)) = (&passwd_err, &spec.user) {
            // Not silently: the uid's real entry may well have another gid and groups.
            log::warn!("{e}: uid {uid} is taken as having no entry (gid {}, no groups)", target.gid);
        }
        if let Some(e) = &group_err {
            if spec.group.is_none() && target.name.is_some() {
                log::warn!("{e}: the commands get no supplementary groups but their own");
            }
        }
        // SAFETY: getuid has no preconditions.
        let invoker_home = user::home_of(unsafe { libc::getuid() }, &passwd);
        let home_now = std::env::var_os("HOME");
        let env = user::environment(
            &target,
            home_now.as_deref().map(OsStr::as_encoded_bytes),
            invoker_home.as_deref(),
        );
        let setgroups_denied = std::fs::read("/proc/self/setgroups").is_ok_and(|s| s.trim_ascii() == b"deny");
        let who = who(&target);
        let scratch = vec![std::cell::Cell::new(0); target.groups.len()];
        log::debug!("commands run as {who}, groups {:?}", target.groups);
        Ok(Privs {
            switch: Some(Switch {
                uid: target.uid,
                gid: target.gid,
                groups: target.groups,
                drop_caps: target.uid != 0,
                env,
                who,
                setgroups_denied,
                last_cap: last_cap(),
                scratch,
            }),
            no_new_privs,
        })
    }

    /// The environment changes for the commands (`None`: remove the variable).
    pub fn env(&self) -> &[(&'static str, Option<Vec<u8>>)] {
        self.switch.as_ref().map(|s| s.env.as_slice()).unwrap_or_default()
    }

    /// In the child (after clone or fork), before exec: no_new_privs, then setgroups → setresgid → (for a
    /// non-root target) the bounding set → setresuid, a check that they took effect,
    /// then the inheritable and ambient sets. Returns the failed step and its errno; the
    /// caller must then _exit without exec (never run the command as root by accident).
    pub fn apply(&self) -> Result<(), (u8, Errno)> {
        if self.no_new_privs {
            // SAFETY: prctl(2) with integer arguments.
            if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1 as libc::c_ulong, 0, 0, 0) } != 0 {
                return Err((NO_NEW_PRIVS, Errno::last()));
            }
        }
        let Some(s) = &self.switch else { return Ok(()) };
        // SAFETY: raw system calls with integer arguments and a pointer to `groups`, a vector
        // built before clone or fork that nothing frees before exec.
        unsafe {
            let groups = s.groups.as_ptr();
            if libc::syscall(SYS_SETGROUPS, s.groups.len() as libc::c_long, groups) != 0 {
                return Err((SETGROUPS, Errno::last()));
            }
            let gid = s.gid as libc::c_long;
            if libc::syscall(SYS_SETRESGID, gid, gid, gid) != 0 {
                return Err((SETGID, Errno::last()));
            }
        }
        if s.drop_caps {
            // After setgroups (a reaper that is not root fails there, which says why) and
            // before setresuid: dropping from the bounding set needs CAP_SETPCAP.
            clear_bounding_set(s.last_cap, self.no_new_privs)?;
        }
        // SAFETY: as above.
        unsafe {
            let uid = s.uid as libc::c_long;
            if libc::syscall(SYS_SETRESUID, uid, uid, uid) != 0 {
                return Err((SETUID, Errno::last()));
            }
            // A filter or a tracer that fakes success must not leave the command root, nor in
            // reaper's groups (root's group 0, typically).
            if libc::getuid() != s.uid
                || libc::geteuid() != s.uid
                || libc::getgid() != s.gid
                || libc::getegid() != s.gid
                || !s.groups_took_effect()
            {
                return Err((VERIFY, Errno::EPERM));
            }
        }
        if s.drop_caps {
            let header = CapHeader { version: LINUX_CAPABILITY_VERSION_3, pid: 0 };
            let data = [CapData::default(); 2];
            // SAFETY: capset(2) reads the header and two data structs from our stack.
            if unsafe { libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr()) } != 0 {
                return Err((INHERITABLE, Errno::last()));
            }
            // As for the ids: a faked capset must not leave reaper's inheritable set.
            let header = CapHeader { version: LINUX_CAPABILITY_VERSION_3, pid: 0 };
            let mut now = [CapData { effective: 1, permitted: 1, inheritable: 1 }; 2];
            // SAFETY: capget(2) writes two data structs to our stack.
            let read =
                unsafe { libc::syscall(libc::SYS_capget, &header as *const CapHeader, now.as_mut_ptr()) };
            if read != 0 || now.iter().any(|d| d.effective | d.permitted | d.inheritable != 0) {
                return Err((VERIFY, Errno::EPERM));
            }
            // SAFETY: prctl(2) with integer arguments.
            let cleared = unsafe {
                libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong, 0, 0, 0)
            };
            // EINVAL: a kernel before 4.3, which has no ambient set.
            if cleared != 0 && Errno::last() != Errno::EINVAL {
                return Err((AMBIENT, Errno::last()));
            }
        }
        Ok(())
    }

    /// The message for a step `apply` reported, or `None` if `tag` is not one of its steps.
    pub fn failure(&self, command: &OsStr, tag: u8, errno: Errno) -> Option<String> {
        let command = printable(command.as_encoded_bytes());
        let why = crate::error::os(errno);
        if tag == NO_NEW_PRIVS {
            return Some(format!("cannot run '{command}' with no_new_privs: {why}"));
        }
        let s = self.switch.as_ref()?;
        let step = match tag {
            BOUNDING => format!(
                "cannot clear the capability bounding set: {why} (reaper needs CAP_SETPCAP; \
                 with --no-new-privs the bounding set cannot grant anything and is left as it is)"
            ),
            SETGROUPS if s.setgroups_denied => format!(
                "setgroups: {why} (/proc/self/setgroups is \"deny\" in this user namespace: \
                 supplementary groups cannot be set)"
            ),
            SETGROUPS => format!("setgroups: {why}"),
            SETGID => format!("setresgid: {why}"),
            SETUID => format!("setresuid: {why}"),
            VERIFY => "the ids, groups or capabilities did not change although the system calls succeeded"
                .to_owned(),
            INHERITABLE => format!("cannot clear the inheritable capabilities: {why}"),
            AMBIENT => format!("cannot clear the ambient capabilities: {why}"),
            _ => return None,
        };
        Some(format!("cannot run '{command}' as {}: {step}", s.who))
    }
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// The kernel's last capability: the one before the first that PR_CAPBSET_READ calls invalid
/// (no /proc/sys/kernel/cap_last_cap needed). Found before fork, so that in the child any
/// failure to read the set is a failure, not taken for its end (a filter or tracer answering
/// EINVAL for one capability would otherwise leave the rest in the bounding set).
fn last_cap() -> libc::c_ulong {
    (1..64 as libc::c_ulong)
        // SAFETY: prctl(2) with integer arguments.
        .find(|&cap| unsafe { libc::prctl(libc::PR_CAPBSET_READ, cap, 0, 0, 0) } < 0)
        .map_or(63, |cap| cap - 1)
}

/// Drops every capability still in the bounding set, up to `last` (the kernel's last one).
/// Without CAP_SETPCAP the drop fails: the promise is broken, unless no_new_privs is set, under
/// which an exec can gain nothing (no file capabilities, no set-uid root) and the bounding set
/// of a non-root process is moot.
fn clear_bounding_set(last: libc::c_ulong, no_new_privs: bool) -> Result<(), (u8, Errno)> {
    for cap in 0..=last {
        // SAFETY: prctl(2) with integer arguments.
        let held = unsafe { libc::prctl(libc::PR_CAPBSET_READ, cap, 0, 0, 0) };
        if held < 0 {
            return Err((BOUNDING, Errno::last()));
        }
        // SAFETY: as above.
        if held == 1 && unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) } != 0 {
            let e = Errno::last();
            if e == Errno::EPERM && no_new_privs {
                return Ok(());
            }
            return Err((BOUNDING, e));
        }
    }
    Ok(())
}

/// "app (uid 1000, gid 1000)" or "uid 4242 (gid 4242)"; the name comes from /etc/passwd.
fn who(t: &Target) -> String {
    match &t.name {
        Some(n) => format!("{} (uid {}, gid {})", printable(n.as_bytes()), t.uid, t.gid),
        None => format!("uid {} (gid {})", t.uid, t.gid),
    }
}

/// The bytes of `path`, at most MAX_DB of them, or nothing and why not. Never blocks (a FIFO
/// or device put there is refused) and never keeps the file open.
fn read_db(path: &str) -> (Vec<u8>, Option<String>) {
    let read = || -> std::io::Result<Vec<u8>> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
            .open(path)?;
        if !file.metadata()?.is_file() {
            return Err(std::io::Error::other("not a regular file"));
        }
        let mut bytes = Vec::new();
        File::take(file, MAX_DB + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > MAX_DB {
            return Err(std::io::Error::other("larger than 16 MiB"));
        }
        Ok(bytes)
    };
    match read() {
        Ok(bytes) => (bytes, None),
        Err(e) => (Vec::new(), Some(format!("cannot read {path}: {}", crate::error::os(e)))),
    }
}
