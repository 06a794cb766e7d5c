//! reaper's memory cgroup: its OOM-kill counter, limit and use, for telling a death by the
//! kernel's OOM killer from any other SIGKILL (README "Diagnosing"), and for `--ps`.
//!
//! The counter is per cgroup, not per process: when it went up while a SIGKILLed process was
//! reaped, the OOM killer is the likely killer, since the kernel counts the kill before it
//! sends the signal. When several died of SIGKILL in the same reap batch, the report says so
//! instead of guessing which.
//!
//! Read only when a SIGKILL death is reaped (and once at start): no polling. Everything here
//! comes from files another party controls the content of (a cgroup namespace, a bind mount):
//! reads are bounded, paths with `..` are refused, and any failure means "not known", never an
//! error.

use std::io::Read;

/// Which cgroup hierarchy holds the memory controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// Legacy: `memory.oom_control`, `memory.limit_in_bytes`, `memory.usage_in_bytes`.
    V1,
    /// Unified: `memory.events`, `memory.max`, `memory.current`.
    V2,
}

/// A memory limit: `None` unlimited.
pub type Limit = Option<u64>;

/// v1 writes "unlimited" as the largest page-aligned counter (9223372036854771712 with 4 KB
/// pages); anything from 2^62 up is no limit a machine could have.
const V1_UNLIMITED: u64 = 1 << 62;
/// Deeper than any real hierarchy: the walk up to the mount for the effective limit stops here.
const MAX_DEPTH: usize = 64;
/// A cgroup file holds a number or a few lines of them.
const SMALL_FILE: u64 = 4096;
/// /proc/self/cgroup: a line per hierarchy.
const CGROUP_LIST_MAX: u64 = 65536;
/// /proc/self/mountinfo with thousands of mounts is still below this.
const MOUNTINFO_MAX: u64 = 1 << 20;

/// The cgroup reaper's memory controller put it in: `mount` is where its hierarchy is mounted,
/// `dir` the cgroup's directory below it. (Strings, not paths: `std::path`'s component
/// walking costs binary that a `/`-joined string does not.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cgroup {
    pub version: Version,
    pub mount: String,
    pub dir: String,
}

/// The memory controller's entry in /proc/self/cgroup: v1's `N:...memory...:/path` wins over
/// v2's `0::/path` (on a hybrid system the memory controller is in v1, and the v2 cgroup has
/// no memory files). A path that climbs out (`..`, outside a cgroup namespace) is refused.
pub fn own_path(proc_cgroup: &str) -> Option<(Version, String)> {
    let mut v2 = None;
    for line in proc_cgroup.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        if !path.starts_with('/') || path.split('/').any(|c| c == "..") {
            continue;
        }
        if controllers.split(',').any(|c| c == "memory") {
            return Some((Version::V1, path.to_owned()));
        }
        if id == "0" && controllers.is_empty() {
            v2 = Some((Version::V2, path.to_owned()));
        }
    }
    v2
}

/// Where cgroup `path` of `version` is, from /proc/self/mountinfo: the mount of that hierarchy
/// whose root (the cgroup it shows) contains `path`, joined with the rest of the path.
pub fn locate(mountinfo: &str, version: Version, path: &str) -> Option<Cgroup> {
    // Only the cgroup mounts' lines, found by one search through the whole text: splitting
    // every line at " - " began a substring search per line, most of the instructions of
    // reaper's start. (" - " is on every line once: mountinfo writes a space in a path as
    // \040.)
    for (at, _) in mountinfo.match_indices(" - cgroup") {
        // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
        let (head, tail) = mountinfo.split_at(at);
        let before = head.rsplit_once('\n').map_or(head, |(_, line)| line);
        let after = tail.split_once('\n').map_or(tail, |(line, _)| line);
        let Some(after) = after.strip_prefix(" - ") else {
            continue;
        };
        // The file system type first: most lines are other mounts, whose fields need no split.
        let mut after = after.split(' ');
        let ours = match (version, after.next()) {
            (Version::V1, Some("cgroup")) => {
                after.nth(1).is_some_and(|o| o.split(',').any(|o| o == "memory"))
            }
            (Version::V2, Some("cgroup2")) => true,
            _ => false,
        };
        if !ours {
            continue;
        }
        let mut fields = before.split(' ').skip(3);
        let (Some(root), Some(mount)) = (fields.next(), fields.next()) else {
            continue;
        };
        let root = unescape(root);
        let Some(rest) = below(path, &root) else {
            continue;
        };
        let mount = unescape(mount).trim_end_matches('/').to_owned();
        let dir = rest.split('/').filter(|c| !c.is_empty()).fold(mount.clone(), |d, c| d + "/" + c);
        return Some(Cgroup { version, mount, dir });
    }
    None
}

/// `path` relative to `root` if it lies in it (whole components only).
fn below<'a>(path: &'a str, root: &str) -> Option<&'a str> {
    let root = root.trim_end_matches('/');
    let rest = path.strip_prefix(root)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

/// mountinfo's octal escapes (`\040` for a space, `\134` for a backslash).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match octal {
            Some(d) if bytes[i] == b'\\' => {
                out.push(d.iter().fold(0u8, |n, b| n.wrapping_mul(8).wrapping_add(b - b'0')));
                i += 4;
            }
            _ => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The number after `key` in a `key value` file (`memory.events`, `memory.oom_control`).
pub fn field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
}

/// A limit file: `max` (v2) or a huge number (v1) is no limit. `None`: unreadable.
pub fn parse_limit(text: &str) -> Option<Limit> {
    match text.trim() {
        "max" => Some(None),
        n => n.parse::<u64>().ok().map(|n| (n < V1_UNLIMITED).then_some(n)),
    }
}

/// Bytes the way people write memory limits: `256 MiB`, `1.5 GiB`, `512 B`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut unit = 0;
    while unit + 1 < UNITS.len() && bytes >> (10 * (unit + 1)) > 0 {
        unit += 1;
    }
    let whole = bytes >> (10 * unit);
    // One decimal, rounded down, shown only when not zero.
    let tenths = (((bytes - (whole << (10 * unit))) as u128 * 10) >> (10 * unit)) as u64;
    match tenths {
        0 => format!("{whole} {}", UNITS[unit]),
        t => format!("{whole}.{t} {}", UNITS[unit]),
    }
}

/// The limit as the OOM line and `--ps` word it.
pub fn limit_text(limit: Option<Limit>) -> String {
    match limit {
        Some(Some(bytes)) => format!("memory limit {}", size(bytes)),
        Some(None) => "no memory limit".to_owned(),
        None => "memory limit unknown".to_owned(),
    }
}

/// The OOM line names this many of a batch's SIGKILL deaths, then counts the rest.
const SHOWN: usize = 8;

/// What the counter going up by `rose` means for the SIGKILL deaths of one batch (`killed`:
/// pid and name): one line, or none when it did not go up.
pub fn report(rose: u64, killed: &[(i32, String)], limit: Option<Limit>) -> Option<String> {
    let limit = limit_text(limit);
    match killed {
        _ if rose == 0 => None,
        [] => None,
        [(pid, name)] => Some(format!("{name} (pid {pid}) was killed by the OOM killer ({limit})")),
        many => {
            let mut names: Vec<String> =
                many.iter().take(SHOWN).map(|(pid, name)| format!("{name} (pid {pid})")).collect();
            if many.len() > SHOWN {
                names.push(format!("and {} more", many.len() - SHOWN));
            }
            Some(format!(
                "the OOM killer killed {rose} process{} ({limit}) while {} died of SIGKILL; the \
                 cgroup's counter does not say which: {}",
                if rose == 1 { "" } else { "es" },
                many.len(),
                names.join(", ")
            ))
        }
    }
}

/// `--ps`'s summary line, from what could be read; `None` when nothing could.
pub fn summary(current: Option<u64>, limit: Option<Limit>, kills: Option<u64>) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(c) = current {
        parts.push(format!("{} used", size(c)));
    }
    if limit.is_some() {
        parts.push(limit_text(limit));
    }
    if let Some(k) = kills {
        parts.push(format!("{k} OOM kill{}", if k == 1 { "" } else { "s" }));
    }
    (!parts.is_empty()).then(|| format!("Memory (cgroup): {}.", parts.join(", ")))
}

/// The first `max` bytes of a file, as text; `None` if unreadable. A line the bound cuts is
/// dropped: `oom_kill 12345` cut to `oom_kill 12` would read as another number.
///
/// Read through a buffer on the stack, kept in a heap buffer of just the size read: these
/// files are read right after the command's start, and std's `read_to_end` into an empty
/// vector starts with 32-byte reads and grows by doubling, which took 7 read(2)s for a 3 KB
/// mountinfo and had musl's allocator map and unmap pages for the buffers it outgrew. 1 KB,
/// not a page: this is reaper's deepest point of its start, and a page here was one more
/// stack page to fault in (a read(2) more for a 2 KB mountinfo costs less).
fn read(path: &str, max: u64) -> Option<String> {
    let mut file = std::fs::File::open(path).ok()?.take(max);
    let mut page = [0u8; 1024];
    let mut text = Vec::new();
    loop {
        match file.read(&mut page) {
            Ok(0) => break,
            Ok(n) => text.extend_from_slice(&page[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    if text.len() as u64 == max && text.last() != Some(&b'\n') {
        text.truncate(text.iter().rposition(|&b| b == b'\n').map_or(0, |n| n + 1));
    }
    // Valid UTF-8 (always, but for a hostile bind mount) is kept as it is, without a copy.
    Some(String::from_utf8(text).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

/// Where container engines and init systems mount the memory hierarchy: v1's memory
/// controller, or the unified hierarchy.
const V1_MOUNT: &str = "/sys/fs/cgroup/memory";
const V2_MOUNT: &str = "/sys/fs/cgroup";
/// cgroup.procs, read to find reaper's pid: a container's few processes; a host's large
/// cgroup may go past it (then mountinfo decides).
const PROCS_MAX: u64 = 65536;

/// Where cgroup `path` of `version` is if the hierarchy is mounted where it usually is: below
/// the mount point when that shows the whole hierarchy (or a cgroup namespace's part of it),
/// or the mount point itself when that shows reaper's own cgroup (Docker on cgroup v1 without
/// a cgroup namespace). In that order, each once. `Cgroup::is_ours` tells which is reaper's.
/// (An iterator, not a vector: a block of a size no other allocation has yet made musl's
/// allocator map a page and unmap it again.)
pub fn usual(version: Version, path: &str) -> impl Iterator<Item = Cgroup> {
    let mount = if version == Version::V1 { V1_MOUNT } else { V2_MOUNT };
    let dir = path.split('/').filter(|c| !c.is_empty()).fold(mount.to_owned(), |d, c| d + "/" + c);
    let itself = (dir != mount).then(|| Cgroup { version, mount: mount.to_owned(), dir: mount.to_owned() });
    std::iter::once(Cgroup { version, mount: mount.to_owned(), dir }).chain(itself)
}

impl Cgroup {
    /// reaper's memory cgroup, if /proc says where it is and it is mounted here.
    ///
    /// At the usual mount point when it holds reaper's cgroup, without /proc/self/mountinfo:
    /// the kernel takes some 20 us to write that for a new process, more than all the rest of
    /// the discovery, which runs between the command's start and reaper's first wait (a
    /// command that exits at once waited for it).
    pub fn find() -> Option<Cgroup> {
        let proc_cgroup = read("/proc/self/cgroup", CGROUP_LIST_MAX)?;
        let (version, path) = own_path(&proc_cgroup)?;
        let me = std::process::id().to_string();
        if let Some(found) = usual(version, &path).find(|c| c.is_ours(&me)) {
            return Some(found);
        }
        let mountinfo = read("/proc/self/mountinfo", MOUNTINFO_MAX)?;
        let found = Cgroup::located(&mountinfo, version, &path);
        if found.is_none() {
            log::debug!("no memory cgroup of reaper's is mounted here: no OOM reports");
        }
        found
    }

    /// From the text of /proc/self/mountinfo (read up to a bound: a last line without its
    /// newline was cut, and is dropped rather than misread).
    fn located(mountinfo: &str, version: Version, path: &str) -> Option<Cgroup> {
        let whole = mountinfo.rsplit_once('\n').map_or("", |(whole, _)| whole);
        locate(whole, version, path)
    }

    /// From the texts of /proc/self/cgroup and /proc/self/mountinfo.
    #[cfg(test)]
    fn from(proc_cgroup: &str, mountinfo: &str) -> Option<Cgroup> {
        let (version, path) = own_path(proc_cgroup)?;
        Cgroup::located(mountinfo, version, &path)
    }

    /// Whether this guess (`usual`) is reaper's memory cgroup, as mountinfo would have found
    /// it: `mount` is the root of a mount of the hierarchy's file system type (its parent is
    /// on another), v1's carries the memory controller, and `dir` lists reaper's pid `me` among
    /// its processes (a process is in one cgroup of a hierarchy: no other directory of it
    /// lists it; the kernel writes the pids as the reader's PID namespace numbers them).
    fn is_ours(&self, me: &str) -> bool {
        self.is_mounted() && self.has_memory() && self.lists(me)
    }

    /// `mount` is the root of a mount of the hierarchy's file system type: it has that type,
    /// its parent another.
    fn is_mounted(&self) -> bool {
        use nix::sys::statfs::{CGROUP_SUPER_MAGIC, CGROUP2_SUPER_MAGIC, statfs};
        let magic = if self.version == Version::V1 { CGROUP_SUPER_MAGIC } else { CGROUP2_SUPER_MAGIC };
        let fs = |p: &str| statfs(p).ok().map(|s| s.filesystem_type());
        let parent = match self.mount.rsplit_once('/') {
            Some(("", _)) => "/",
            Some((parent, _)) => parent,
            None => return false,
        };
        fs(&self.mount) == Some(magic) && fs(parent) != Some(magic)
    }

    /// The hierarchy has the memory controller: v1's directories then have its files (v2's
    /// one hierarchy has every controller).
    fn has_memory(&self) -> bool {
        self.version == Version::V2
            || std::fs::exists(format!("{}/memory.limit_in_bytes", self.dir)).unwrap_or(false)
    }

    /// `dir`'s cgroup.procs lists `me`.
    fn lists(&self, me: &str) -> bool {
        read(&format!("{}/cgroup.procs", self.dir), PROCS_MAX).is_some_and(|t| t.lines().any(|l| l == me))
    }

    fn file(&self, dir: &str, v1: &str, v2: &str) -> Option<String> {
        read(&format!("{dir}/{}", if self.version == Version::V1 { v1 } else { v2 }), SMALL_FILE)
    }

    /// OOM kills counted in this cgroup (v1 needs Linux 4.13).
    pub fn oom_kills(&self) -> Option<u64> {
        field(&self.file(&self.dir, "memory.oom_control", "memory.events")?, "oom_kill")
    }

    pub fn current(&self) -> Option<u64> {
        self.file(&self.dir, "memory.usage_in_bytes", "memory.current")?.trim().parse().ok()
    }

    /// The limit that applies: the lowest of this cgroup's and its visible ancestors' (a
    /// container's limit often sits on a parent, the pod's).
    pub fn limit(&self) -> Option<Limit> {
        let mut dir = self.dir.as_str();
        let mut found = self.limit_of(dir)?;
        for _ in 0..MAX_DEPTH {
            // `dir` is `mount` followed by `/NAME`s (see `locate`).
            // (`mount` has no trailing slash: at `mount` itself, its last slash is before the end.)
            match dir.rfind('/') {
                Some(end) if end >= self.mount.len() => dir = &dir[..end],
                _ => break,
            }
            if let Some(Some(n)) = self.limit_of(dir) {
                found = Some(found.map_or(n, |f| f.min(n)));
            }
        }
        Some(found)
    }

    fn limit_of(&self, dir: &str) -> Option<Limit> {
        parse_limit(&self.file(dir, "memory.limit_in_bytes", "memory.max")?)
    }
}

/// A SIGKILL death blamed on the OOM killer: who, and the limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blame {
    /// The one process, or every process of an ambiguous batch.
    pub pids: Vec<i32>,
    pub certain: bool,
    pub limit: String,
}

/// The counter reaper last saw, and the SIGKILL deaths of the reap batch under way.
pub struct Oom {
    cgroup: Cgroup,
    seen: u64,
    killed: Vec<(i32, String)>,
}

impl Oom {
    /// Reads the counter once; `None` (no OOM reports) without a readable one.
    pub fn start() -> Option<Oom> {
        let cgroup = Cgroup::find()?;
        let Some(seen) = cgroup.oom_kills() else {
            log::debug!("no OOM-kill counter in {}: no OOM reports", cgroup.dir);
            return None;
        };
        Some(Oom { cgroup, seen, killed: Vec::new() })
    }

    /// Whether the next SIGKILL death's name could be shown: only the first [`SHOWN`] of a
    /// batch are, so a SIGKILL storm does not read /proc/PID/comm (and peek with waitid) for
    /// thousands of processes the line only counts.
    pub fn wants_names(&self) -> bool {
        self.killed.len() < SHOWN
    }

    /// A child reaped: noted if SIGKILL ended it.
    pub fn reaped(&mut self, pid: i32, ended: crate::state::Ended, name: Option<&str>) {
        if ended == crate::state::Ended::Signaled(libc::SIGKILL) && self.killed.len() < 1024 {
            self.killed.push((pid, name.unwrap_or("?").to_owned()));
        }
    }

    /// End of a reap batch: reads the counter if SIGKILL ended anyone, logs the OOM line if it
    /// went up, and says whom it blamed.
    pub fn batch_done(&mut self) -> Option<Blame> {
        if self.killed.is_empty() {
            return None;
        }
        let killed = std::mem::take(&mut self.killed);
        let now = self.cgroup.oom_kills()?;
        let rose = now.saturating_sub(self.seen);
        self.seen = now;
        let limit = self.cgroup.limit();
        let line = report(rose, &killed, limit)?;
        log::warn!("{line}");
        Some(Blame {
            pids: killed.iter().map(|k| k.0).collect(),
            certain: killed.len() == 1,
            limit: limit_text(limit),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from a Docker host with cgroup v1 (no cgroup namespace), a Kubernetes node with
    // cgroup v2, and this kind of hybrid machine.
    const V1_DOCKER_CGROUP: &str = "12:pids:/docker/4c1f\n11:memory:/docker/4c1f\n4:cpu,cpuacct:/docker/4c1f\n1:name=systemd:/docker/4c1f\n0::/system.slice/containerd.service\n";
    const V1_DOCKER_MOUNTINFO: &str = "\
1203 1195 0:66 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - tmpfs tmpfs rw,mode=755
1210 1203 0:30 /docker/4c1f /sys/fs/cgroup/cpu,cpuacct ro,nosuid,nodev,noexec,relatime master:11 - cgroup cgroup rw,cpu,cpuacct
1211 1203 0:33 /docker/4c1f /sys/fs/cgroup/memory ro,nosuid,nodev,noexec,relatime master:14 - cgroup cgroup rw,memory
1212 1203 0:34 /docker/4c1f /sys/fs/cgroup/memory_recursiveprot ro - cgroup cgroup rw,memory_recursiveprot
";
    const V2_K8S_CGROUP: &str = "0::/\n";
    const V2_K8S_MOUNTINFO: &str = "\
2237 2236 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup rw,nsdelegate,memory_recursiveprot
";
    const HYBRID_CGROUP: &str = "9:name=systemd:/\n4:memory:/process_api/19d3\n1:cpu:/\n0::/\n";
    const HYBRID_MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const V2_EVENTS: &str = "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n";
    const V1_OOM_CONTROL: &str = "oom_kill_disable 0\nunder_oom 0\noom_kill 5\n";

    fn cg(version: Version, mount: &str, dir: &str) -> Option<Cgroup> {
        Some(Cgroup { version, mount: mount.into(), dir: dir.into() })
    }

    #[test]
    fn own_path_prefers_the_v1_memory_line() {
        assert_eq!(own_path(V1_DOCKER_CGROUP), Some((Version::V1, "/docker/4c1f".into())));
        assert_eq!(own_path(HYBRID_CGROUP), Some((Version::V1, "/process_api/19d3".into())));
        assert_eq!(own_path(V2_K8S_CGROUP), Some((Version::V2, "/".into())));
        assert_eq!(own_path("0::/a/b\n"), Some((Version::V2, "/a/b".into())));
        // A memory-like name is not the memory controller; a named hierarchy is not v2.
        assert_eq!(own_path("3:memory_recursiveprot:/x\n1:name=systemd:/y\n"), None);
        assert_eq!(own_path("1::/y\n"), None);
        assert_eq!(own_path("0:x:/y\n"), None);
    }

    #[test]
    fn own_path_refuses_what_climbs_out_or_is_malformed() {
        assert_eq!(own_path("0::/../../x\n"), None);
        assert_eq!(own_path("4:memory:/a/..\n0::/ok\n"), Some((Version::V2, "/ok".into())));
        assert_eq!(own_path("4:memory\n0::relative\n"), None);
        assert_eq!(own_path(""), None);
        // The path keeps its colons.
        assert_eq!(own_path("0::/a:b\n"), Some((Version::V2, "/a:b".into())));
    }

    #[test]
    fn locate_joins_the_mount_and_the_path_below_its_root() {
        assert_eq!(
            locate(V1_DOCKER_MOUNTINFO, Version::V1, "/docker/4c1f"),
            cg(Version::V1, "/sys/fs/cgroup/memory", "/sys/fs/cgroup/memory")
        );
        assert_eq!(
            locate(V1_DOCKER_MOUNTINFO, Version::V1, "/docker/4c1f/sub"),
            cg(Version::V1, "/sys/fs/cgroup/memory", "/sys/fs/cgroup/memory/sub")
        );
        // A sibling whose name starts the same is not below the root.
        assert_eq!(locate(V1_DOCKER_MOUNTINFO, Version::V1, "/docker/4c1f2"), None);
        assert_eq!(
            locate(V2_K8S_MOUNTINFO, Version::V2, "/"),
            cg(Version::V2, "/sys/fs/cgroup", "/sys/fs/cgroup")
        );
        assert_eq!(
            locate(HYBRID_MOUNTINFO, Version::V1, "/process_api/19d3"),
            cg(Version::V1, "/sys/fs/cgroup/memory", "/sys/fs/cgroup/memory/process_api/19d3")
        );
        assert_eq!(
            locate(HYBRID_MOUNTINFO, Version::V2, "/a"),
            cg(Version::V2, "/sys/fs/cgroup/unified", "/sys/fs/cgroup/unified/a")
        );
        // No v2 mount, no v1 memory mount.
        assert_eq!(locate(V1_DOCKER_MOUNTINFO, Version::V2, "/"), None);
        assert_eq!(locate(V2_K8S_MOUNTINFO, Version::V1, "/"), None);
        assert_eq!(locate("garbage\n1 2 3 - cgroup2\n", Version::V2, "/"), None);
    }

    #[test]
    fn locate_unescapes_mount_points() {
        let info = "5 1 0:9 /a\\040b /mnt/my\\040cg\\134x rw - cgroup2 none rw\n";
        assert_eq!(locate(info, Version::V2, "/a b/c"), cg(Version::V2, "/mnt/my cg\\x", "/mnt/my cg\\x/c"));
        // Not an escape: left as it is.
        assert_eq!(unescape("\\08x\\1"), "\\08x\\1");
        assert_eq!(unescape("a\\011b"), "a\tb");
        // Digits after anything but a backslash are digits.
        assert_eq!(unescape("/x123/4567"), "/x123/4567");
    }

    #[test]
    fn counters_and_limits() {
        assert_eq!(field(V2_EVENTS, "oom_kill"), Some(2));
        assert_eq!(field(V1_OOM_CONTROL, "oom_kill"), Some(5));
        assert_eq!(field(V1_OOM_CONTROL, "oom"), None);
        assert_eq!(field("oom_killx 3\n", "oom_kill"), None);
        assert_eq!(field("oom_kill many\n", "oom_kill"), None);
        assert_eq!(field("oom_kill_disable 0\nunder_oom 1\n", "oom_kill"), None);
        assert_eq!(parse_limit("max\n"), Some(None));
        assert_eq!(parse_limit("268435456\n"), Some(Some(268435456)));
        assert_eq!(parse_limit("9223372036854771712\n"), Some(None));
        assert_eq!(parse_limit(&(V1_UNLIMITED - 1).to_string()), Some(Some(V1_UNLIMITED - 1)));
        assert_eq!(parse_limit(&V1_UNLIMITED.to_string()), Some(None));
        assert_eq!(parse_limit("-1"), None);
        assert_eq!(parse_limit(""), None);
    }

    /// v1 with memory co-mounted beside another controller, a path with spaces; hostile
    /// counter files: a repeated key (the first counts), no number, the largest u64, `max`.
    #[test]
    fn co_mounted_v1_and_hostile_counters() {
        let cgroup = "7:cpu,memory:/k8s/a b\n0::/\n";
        let info = "9 1 0:40 /k8s /sys/fs/cgroup/cpu,memory rw - cgroup cgroup rw,cpu,memory\n";
        assert_eq!(
            Cgroup::from(cgroup, info),
            cg(Version::V1, "/sys/fs/cgroup/cpu,memory", "/sys/fs/cgroup/cpu,memory/a b")
        );
        assert_eq!(field("oom_kill 4\noom_kill 9\n", "oom_kill"), Some(4));
        assert_eq!(field("oom_kill\noom_kill 9\n", "oom_kill"), Some(9));
        assert_eq!(field("oom_kill 18446744073709551615\n", "oom_kill"), Some(u64::MAX));
        assert_eq!(field("oom_kill 18446744073709551616\n", "oom_kill"), None);
        assert_eq!(field("oom_kill max\n", "oom_kill"), None);
    }

    #[test]
    fn sizes() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1024), "1 KiB");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(256 << 20), "256 MiB");
        assert_eq!(size((64 << 20) - 1), "63.9 MiB");
        assert_eq!(size(3 << 29), "1.5 GiB");
        assert_eq!(size(1 << 40), "1 TiB");
        assert_eq!(size(u64::MAX), "16383.9 PiB");
    }

    #[test]
    fn the_oom_line() {
        let one = [(12, "php-fpm".to_owned())];
        assert_eq!(
            report(1, &one, Some(Some(256 << 20))).as_deref(),
            Some("php-fpm (pid 12) was killed by the OOM killer (memory limit 256 MiB)")
        );
        assert_eq!(
            report(2, &one, Some(None)).as_deref(),
            Some("php-fpm (pid 12) was killed by the OOM killer (no memory limit)")
        );
        assert_eq!(
            report(1, &one, None).as_deref(),
            Some("php-fpm (pid 12) was killed by the OOM killer (memory limit unknown)")
        );
        assert_eq!(report(0, &one, Some(None)), None);
        assert_eq!(report(3, &[], Some(None)), None);
        let two = [(12, "a".to_owned()), (13, "b".to_owned())];
        assert_eq!(
            report(1, &two, Some(Some(64 << 20))).as_deref(),
            Some(
                "the OOM killer killed 1 process (memory limit 64 MiB) while 2 died of SIGKILL; the \
                 cgroup's counter does not say which: a (pid 12), b (pid 13)"
            )
        );
        let many: Vec<(i32, String)> = (1..=10).map(|p| (p, format!("p{p}"))).collect();
        let line = report(2, &many, Some(None)).unwrap_or_default();
        assert!(
            line.starts_with("the OOM killer killed 2 processes (no memory limit) while 10 died"),
            "{line}"
        );
        assert!(line.ends_with(": p1 (pid 1), p2 (pid 2), p3 (pid 3), p4 (pid 4), p5 (pid 5), p6 (pid 6), p7 (pid 7), p8 (pid 8), and 2 more"), "{line}");
        let nine: Vec<(i32, String)> = (1..=9).map(|p| (p, format!("p{p}"))).collect();
        assert!(report(1, &nine, None).unwrap_or_default().ends_with("p8 (pid 8), and 1 more"));
        let eight: Vec<(i32, String)> = (1..=8).map(|p| (p, format!("p{p}"))).collect();
        assert!(report(1, &eight, None).unwrap_or_default().ends_with("p8 (pid 8)"));
    }

    #[test]
    fn the_ps_summary() {
        assert_eq!(
            summary(Some(3 << 20), Some(Some(64 << 20)), Some(1)).as_deref(),
            Some("Memory (cgroup): 3 MiB used, memory limit 64 MiB, 1 OOM kill.")
        );
        assert_eq!(
            summary(Some(0), Some(None), Some(0)).as_deref(),
            Some("Memory (cgroup): 0 B used, no memory limit, 0 OOM kills.")
        );
        assert_eq!(summary(None, None, Some(2)).as_deref(), Some("Memory (cgroup): 2 OOM kills."));
        assert_eq!(summary(None, None, None), None);
    }

    #[test]
    fn from_the_proc_files_dropping_a_cut_line() {
        let found = Cgroup::from(HYBRID_CGROUP, HYBRID_MOUNTINFO);
        assert_eq!(found, cg(Version::V1, "/sys/fs/cgroup/memory", "/sys/fs/cgroup/memory/process_api/19d3"));
        let cut = "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory";
        assert_eq!(Cgroup::from(HYBRID_CGROUP, cut), None);
        assert!(Cgroup::from(HYBRID_CGROUP, &format!("{cut}\n")).is_some());
        assert_eq!(Cgroup::from("garbage", HYBRID_MOUNTINFO), None);
    }

    #[test]
    fn the_usual_places() {
        let v1 = |dir: &str| Cgroup { version: Version::V1, mount: V1_MOUNT.into(), dir: dir.into() };
        let v2 = |dir: &str| Cgroup { version: Version::V2, mount: V2_MOUNT.into(), dir: dir.into() };
        let usual = |v, p| usual(v, p).collect::<Vec<_>>();
        assert_eq!(
            usual(Version::V1, "/docker/4c1f"),
            [v1("/sys/fs/cgroup/memory/docker/4c1f"), v1("/sys/fs/cgroup/memory")]
        );
        assert_eq!(usual(Version::V2, "/"), [v2("/sys/fs/cgroup")]);
        assert_eq!(usual(Version::V2, "//a//b/"), [v2("/sys/fs/cgroup/a/b"), v2("/sys/fs/cgroup")]);
        assert_eq!(usual(Version::V1, ""), [v1("/sys/fs/cgroup/memory")]);
    }

    /// A guess is taken only where the kernel's own files say so: none of these directories
    /// is the root of a cgroup mount (or lists reaper's pid).
    #[test]
    fn a_guess_is_checked() {
        let dir = format!("{}/reaper-cgroup-guess-{}", std::env::temp_dir().display(), std::process::id());
        let _ = std::fs::create_dir_all(&dir);
        let me = std::process::id().to_string();
        let _ = std::fs::write(format!("{dir}/cgroup.procs"), format!("1\n{me}\n"));
        let _ = std::fs::write(format!("{dir}/memory.limit_in_bytes"), "max\n");
        for version in [Version::V1, Version::V2] {
            assert!(!Cgroup { version, mount: dir.clone(), dir: dir.clone() }.is_ours(&me));
            assert!(!Cgroup { version, mount: "/".into(), dir: dir.clone() }.is_ours(&me));
            assert!(!Cgroup { version, mount: "relative".into(), dir: dir.clone() }.is_ours(&me));
        }
        // Each check alone, on files of a plain directory.
        let v1 = Cgroup { version: Version::V1, mount: dir.clone(), dir: dir.clone() };
        let v2 = Cgroup { version: Version::V2, ..v1.clone() };
        assert!(!v1.is_mounted() && !v2.is_mounted());
        assert!(v1.has_memory() && v2.has_memory() && v1.lists(&me) && v1.lists("1"));
        assert!(!v1.lists("0") && !v1.lists(&me[1..]));
        let _ = std::fs::remove_file(format!("{dir}/memory.limit_in_bytes"));
        let _ = std::fs::remove_file(format!("{dir}/cgroup.procs"));
        assert!(!v1.has_memory() && v2.has_memory() && !v1.lists(&me));
        let _ = std::fs::remove_dir_all(&dir);
        // The real one: a guess is taken exactly where it is what mountinfo finds (the test
        // host's own layout: at the usual place, or not).
        let text = |p| std::fs::read_to_string(p).unwrap_or_default();
        if let Some((version, path)) = own_path(&text("/proc/self/cgroup")) {
            let located = Cgroup::located(&text("/proc/self/mountinfo"), version, &path);
            for guess in usual(version, &path) {
                assert_eq!(guess.is_ours(&me), Some(&guess) == located.as_ref(), "{guess:?} {located:?}");
                assert!(!guess.is_ours("0"));
            }
        }
    }

    #[test]
    fn find_reads_the_whole_proc_files() {
        let text = |p| std::fs::read_to_string(p).unwrap_or_default();
        assert_eq!(Cgroup::find(), Cgroup::from(&text("/proc/self/cgroup"), &text("/proc/self/mountinfo")));
    }

    #[test]
    fn start_reads_the_counter() {
        let counter = Cgroup::find().and_then(|c| c.oom_kills());
        assert_eq!(Oom::start().map(|o| o.seen), counter);
    }

    /// A hostile (bind-mounted) memory.events longer than the bound: the number the bound cuts
    /// through is not read as a smaller one (a false rise, or a missed one, later).
    #[test]
    fn a_number_cut_by_the_bound_is_not_read() {
        let dir = format!("{}/reaper-cgroup-cut-{}", std::env::temp_dir().display(), std::process::id());
        let _ = std::fs::create_dir_all(&dir);
        let filler = format!("{}\n", "x".repeat(SMALL_FILE as usize - 12));
        let _ = std::fs::write(format!("{dir}/memory.events"), format!("{filler}oom_kill 12345\n"));
        let cg = Cgroup { version: Version::V2, mount: dir.clone(), dir: dir.clone() };
        assert_eq!(cg.oom_kills(), None);
        // Up to the bound exactly: the whole line is there.
        let filler = format!("{}\n", "x".repeat(SMALL_FILE as usize - 16));
        let _ = std::fs::write(format!("{dir}/memory.events"), format!("{filler}oom_kill 12345\n"));
        assert_eq!(cg.oom_kills(), Some(12345));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn reads_are_bounded() {
        let path = format!("{}/reaper-cgroup-read-{}", std::env::temp_dir().display(), std::process::id());
        let _ = std::fs::write(&path, "12345\n");
        assert_eq!(read(&path, 3).as_deref(), Some(""));
        assert_eq!(read(&path, 6).as_deref(), Some("12345\n"));
        let _ = std::fs::write(&path, "1\n345\n");
        assert_eq!(read(&path, 4).as_deref(), Some("1\n"));
        assert_eq!(read(&path, 5).as_deref(), Some("1\n"));
        assert_eq!(read(&path, 2).as_deref(), Some("1\n"));
        assert_eq!(read(&path, SMALL_FILE).as_deref(), Some("1\n345\n"));
        let _ = std::fs::remove_file(&path);
        assert_eq!(read(&path, 3), None);
        // Opened but unreadable (read(2) says EISDIR): not known, not an empty file.
        assert_eq!(read("/", SMALL_FILE), None);
        // Longer than the stack page it is read through: all of it, up to the bound.
        let long = format!("{}\n", "y".repeat(10_000));
        let _ = std::fs::write(&path, &long);
        assert_eq!(read(&path, 1 << 20).as_deref(), Some(long.as_str()));
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_sigkill_death_is_blamed_only_when_the_counter_rose() {
        let dir = format!("{}/reaper-cgroup-oom-{}", std::env::temp_dir().display(), std::process::id());
        let _ = std::fs::create_dir_all(&dir);
        let counter = |n: u64| {
            let _ =
                std::fs::write(format!("{dir}/memory.oom_control"), format!("under_oom 0\noom_kill {n}\n"));
        };
        let _ = std::fs::write(format!("{dir}/memory.limit_in_bytes"), "67108864\n");
        counter(3);
        let cgroup = Cgroup { version: Version::V1, mount: dir.clone(), dir: dir.clone() };
        let mut oom = Oom { seen: cgroup.oom_kills().unwrap_or(0), cgroup, killed: Vec::new() };
        let kill = crate::state::Ended::Signaled(libc::SIGKILL);
        // Nothing died of SIGKILL: the counter is not even read.
        counter(4);
        oom.reaped(5, crate::state::Ended::Exited(0), Some("sh"));
        oom.reaped(6, crate::state::Ended::Signaled(libc::SIGTERM), None);
        assert_eq!(oom.batch_done(), None);
        assert_eq!(oom.seen, 3);
        // It rose since: the one SIGKILL death is blamed, with the limit.
        oom.reaped(7, kill, Some("python3"));
        let blame = Blame { pids: vec![7], certain: true, limit: "memory limit 64 MiB".into() };
        assert_eq!(oom.batch_done(), Some(blame));
        assert_eq!(oom.seen, 4);
        // An ordinary kill -9: no rise, no blame.
        oom.reaped(8, kill, None);
        assert_eq!(oom.batch_done(), None);
        // Two at once: both named, neither for certain.
        counter(6);
        oom.reaped(9, kill, None);
        oom.reaped(10, kill, Some("b"));
        let blame = Blame { pids: vec![9, 10], certain: false, limit: "memory limit 64 MiB".into() };
        assert_eq!(oom.batch_done(), Some(blame));
        assert!(oom.killed.is_empty());
        // The counter went down (the cgroup recreated): no blame, and the new value is the base.
        counter(1);
        oom.reaped(11, kill, None);
        assert_eq!(oom.batch_done(), None);
        assert_eq!(oom.seen, 1);
        counter(2);
        oom.reaped(12, kill, Some("c"));
        let blame = Blame { pids: vec![12], certain: true, limit: "memory limit 64 MiB".into() };
        assert_eq!(oom.batch_done(), Some(blame));
        // Names are wanted for the first 8 of a batch, the ones the line shows.
        for pid in 0..SHOWN as i32 {
            assert!(oom.wants_names());
            oom.reaped(pid, kill, None);
        }
        assert!(!oom.wants_names());
        // Bounded while a batch lasts.
        for pid in 0..2000 {
            oom.reaped(pid, kill, None);
        }
        assert_eq!(oom.killed.len(), 1024);
        oom.killed.clear();
        assert!(oom.wants_names());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_effective_limit_is_the_lowest_up_to_the_mount() {
        let root = format!("{}/reaper-cgroup-test-{}", std::env::temp_dir().display(), std::process::id());
        let pod = format!("{root}/pod");
        let dir = format!("{pod}/ctr");
        let _ = std::fs::create_dir_all(&dir);
        let write = |d: &str, f: &str, t: &str| {
            let _ = std::fs::write(format!("{d}/{f}"), t);
        };
        write(&root, "memory.max", "1024\n");
        write(&pod, "memory.max", "4096\n");
        write(&dir, "memory.max", "max\n");
        write(&dir, "memory.current", "77\n");
        write(&dir, "memory.events", V2_EVENTS);
        let cg = Cgroup { version: Version::V2, mount: pod.clone(), dir: dir.clone() };
        // The mount's own file counts; above the mount (the hierarchy's root) is not looked at.
        assert_eq!(cg.limit(), Some(Some(4096)));
        assert_eq!(cg.current(), Some(77));
        assert_eq!(cg.oom_kills(), Some(2));
        write(&dir, "memory.max", "2048\n");
        assert_eq!(cg.limit(), Some(Some(2048)));
        let all = Cgroup { version: Version::V2, mount: root.clone(), dir: dir.clone() };
        assert_eq!(all.limit(), Some(Some(1024)));
        let _ = std::fs::remove_file(format!("{dir}/memory.max"));
        assert_eq!(all.limit(), None);
        let v1 = Cgroup { version: Version::V1, mount: root.clone(), dir: dir.clone() };
        write(&dir, "memory.limit_in_bytes", "9223372036854771712\n");
        write(&dir, "memory.oom_control", V1_OOM_CONTROL);
        write(&dir, "memory.usage_in_bytes", "5\n");
        assert_eq!((v1.limit(), v1.oom_kills(), v1.current()), (Some(None), Some(5), Some(5)));
        let _ = std::fs::remove_dir_all(&root);
    }
}
