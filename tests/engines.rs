//! reaper where users meet an init without writing an ENTRYPOINT: as `docker run --init`
//! (dockerd's `init-path`), as podman's `--init` (`init_path`), and as a podman pod's infra
//! container. Against the real engines: a **private dockerd** started and stopped here (its own
//! data root, exec root, socket, pidfile, config file and network namespace; the machine's own
//! dockerd is never touched), and podman with a private root, run root and tmpdir.
//!
//! The README's recipes ("docker run --init with reaper", "podman --init and pods") are read
//! from README.md and run with placeholders substituted, so the documented commands are the
//! tested ones. Each test checks first and prints `skipped: …` to stderr where its engine
//! cannot start. Measured figures are printed as `figure: …` lines (`--nocapture`).

mod common;

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::docker::{root, secs};
use common::{adopted, orphan_storm, remove_tree, skip, tempdir, wait_until, zombies_under};

const BUSYBOX: &str = "/bin/busybox";
/// Placeholders in the README's recipes.
const REAPER_PATH: &str = "/usr/local/bin/reaper";
const PAUSE_IMAGE: &str = "localhost/reaper-pause";
const TERM_HANDLER: &str = r#"trap 'exit 0' TERM; echo READY; sleep 1000 & wait"#;
const TERM_IGNORER: &str = r#"trap '' TERM; echo READY; while :; do sleep 1; done"#;

// --- the README's recipes ---------------------------------------------------------------

/// The fenced block after the README line `<!-- recipe: NAME ... -->`.
fn recipe(name: &str) -> String {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let marker = format!("<!-- recipe: {name} ");
    let after = readme.split_once(&marker).unwrap_or_else(|| panic!("README has no recipe {name:?}")).1;
    let block = after.split_once("\n```").and_then(|(_, b)| b.split_once('\n')).map(|(_, b)| b);
    let block = block.and_then(|b| b.split_once("\n```")).map(|(b, _)| b);
    block.unwrap_or_else(|| panic!("recipe {name:?}: no fenced block")).to_owned()
}

/// A shell line split into words: whitespace separates, double quotes group.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word: Option<String> = None;
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                word.get_or_insert_with(String::new);
            }
            c if c.is_whitespace() && !quoted => out.extend(word.take()),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    out.extend(word);
    out
}

/// The recipe line that starts with `prefix`, as words, placeholders substituted: `my-command`
/// becomes `command` (several words), other words through `subst`; `extra` goes right after
/// the subcommand (`--rm` after `docker run`, `-q` after `podman build`).
fn recipe_line(
    name: &str,
    prefix: &str,
    extra: &[&str],
    subst: &[(&str, &str)],
    command: &[&str],
) -> Vec<String> {
    let block = recipe(name);
    let line = block
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("recipe {name:?} has no line starting {prefix:?}:\n{block}"));
    let mut ws = words(line);
    let n = if ws.get(1).map(String::as_str) == Some("pod") { 3 } else { 2 };
    ws.splice(n..n, extra.iter().map(|s| s.to_string()));
    ws.into_iter()
        .flat_map(|w| {
            if w == "my-command" {
                return command.iter().map(|s| s.to_string()).collect();
            }
            let mut w = w;
            for (from, to) in subst {
                w = w.replace(from, to);
            }
            vec![w]
        })
        .collect()
}

// --- running the CLIs -------------------------------------------------------------------

/// Output of one CLI call.
#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

fn run(cmd: &mut Command, timeout: Duration) -> Out {
    try_run(cmd, timeout).unwrap_or_else(|| panic!("{cmd:?} did not finish within {timeout:?}"))
}

fn try_run(cmd: &mut Command, timeout: Duration) -> Option<Out> {
    cmd.stdin(Stdio::null()).process_group(0);
    let start = Instant::now();
    let (code, stdout, stderr) = common::run_captured(cmd, timeout)?;
    Some(Out {
        code,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr,
        elapsed: start.elapsed(),
    })
}

fn ok(cmd: &mut Command, timeout: Duration) -> String {
    let out = run(cmd, timeout);
    assert_eq!(out.code, 0, "{cmd:?} failed: {out:?}");
    out.stdout.trim().to_owned()
}

/// What reaper's `--version` says its commit is (dockerd's reading of `X - git.COMMIT`).
fn commit_of(binary: &Path) -> String {
    let v = ok(Command::new(binary).arg("--version"), Duration::from_secs(10));
    v.split(" - git.").nth(1).unwrap_or_else(|| panic!("{v:?}")).to_owned()
}

/// argv of a process, from NUL-separated /proc/PID/cmdline text.
fn argv(cmdline: &str) -> Vec<&str> {
    cmdline.trim_end_matches('\0').split('\0').collect()
}

/// A build context with Debian's static busybox as the only file: an image `FROM scratch` with
/// busybox as /bin/sh and friends, and nothing of reaper's (the engine brings the init).
fn busybox_context(dir: &Path) -> Result<PathBuf, String> {
    let ctx = dir.join("busybox-context");
    std::fs::create_dir_all(&ctx).map_err(|e| e.to_string())?;
    std::fs::copy(BUSYBOX, ctx.join("busybox"))
        .map_err(|e| format!("{BUSYBOX}: {e} (install Debian's busybox-static, as .ci/run does)"))?;
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n",
    )
    .map_err(|e| e.to_string())?;
    Ok(ctx)
}

fn unique(what: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("reaper-e2e-{}-{what}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst))
}

// --- a private dockerd --------------------------------------------------------------------

/// A dockerd of this test's own, stopped by its pid and cleaned up when dropped.
struct Dockerd {
    dir: PathBuf,
    child: Child,
    host: String,
    log: PathBuf,
}

impl Dockerd {
    /// Starts dockerd with the README's daemon.json (init-path: `reaper`) as its only config.
    fn start(reaper: &Path) -> Result<Dockerd, String> {
        let dir = tempdir("dockerd");
        let config = dir.join("daemon.json");
        let json = recipe("daemon.json").replace(REAPER_PATH, reaper.to_str().expect("utf-8"));
        std::fs::write(&config, json).map_err(|e| e.to_string())?;
        let log = dir.join("dockerd.log");
        let file = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        let host = format!("unix://{}", dir.join("docker.sock").display());
        let p = |name: &str| dir.join(name).to_string_lossy().into_owned();
        let mut cmd = Command::new("dockerd");
        cmd.args(["--config-file", &p("daemon.json"), "--data-root", &p("data"), "--exec-root", &p("exec")])
            .args(["--host", &host, "--pidfile", &p("dockerd.pid")])
            .args(["--bridge", "none", "--iptables=false", "--ip-masq=false", "--storage-driver", "overlay2"])
            .stdin(Stdio::null())
            .stdout(file.try_clone().map_err(|e| e.to_string())?)
            .stderr(file)
            .process_group(0);
        // SAFETY: unshare(2) is a raw syscall, async-signal-safe between fork and exec. Its own
        // network namespace: with `--bridge none` dockerd deletes any `docker0` it sees, which
        // in the host's namespace is the machine's own dockerd's bridge.
        unsafe {
            cmd.pre_exec(|| {
                if libc::unshare(libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let start = Instant::now();
        let child = cmd.spawn().map_err(|e| format!("dockerd: {e}"))?;
        let mut d = Dockerd { dir, child, host, log };
        let up = wait_until(Duration::from_secs(30), || {
            let out = try_run(
                &mut d.docker(["version", "--format", "{{.Server.Version}}"]),
                Duration::from_secs(10),
            );
            out.is_some_and(|o| o.code == 0) || !matches!(d.child.try_wait(), Ok(None))
        });
        if !up || !matches!(d.child.try_wait(), Ok(None)) {
            let log = std::fs::read_to_string(&d.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            return Err(format!("dockerd did not start: {tail:?}"));
        }
        println!("figure: private dockerd ready in {}", secs(start.elapsed()));
        Ok(d)
    }

    /// `docker ARGS` against this daemon.
    fn docker<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(&self, args: I) -> Command {
        let mut cmd = Command::new("docker");
        cmd.arg("--host").arg(&self.host).args(args).env("DOCKER_BUILDKIT", "0").env_remove("DOCKER_CONTEXT");
        cmd
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        // Containers first: dockerd would give each its stop timeout on the way down.
        if let Some(ids) = try_run(&mut self.docker(["ps", "-aq"]), Duration::from_secs(30)) {
            let ids: Vec<&str> = ids.stdout.split_whitespace().collect();
            if !ids.is_empty() {
                let _ = try_run(self.docker(["rm", "-f"]).args(&ids), Duration::from_secs(60));
            }
        }
        let pid = self.child.id() as i32;
        let start = Instant::now();
        // SAFETY: kill(2) of the dockerd this test started, by its pid.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        if common::wait_child(&mut self.child, Duration::from_secs(20)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        println!("figure: private dockerd stopped in {}", secs(start.elapsed()));
        // Its containerd and shims name the exec root on their command lines.
        common::kill_processes_using(&self.dir);
        if std::thread::panicking() {
            eprintln!("--- dockerd's log:\n{}---", self.log());
        }
        remove_tree(&self.dir);
    }
}

#[test]
fn docker_run_init_is_reaper_with_a_private_dockerd() {
    if !common::is_root() || common::which("dockerd").is_none() || common::which("docker").is_none() {
        return skip("no private dockerd (needs root, dockerd and the docker CLI)");
    }
    let total = Instant::now();
    let reaper = common::static_binary().unwrap_or_else(|e| panic!("{e}"));
    // The machine's own dockerd keeps its bridge (see the network namespace in Dockerd::start).
    let bridge = Path::new("/sys/class/net/docker0");
    let had_bridge = bridge.exists();
    let d = match Dockerd::start(&reaper) {
        Ok(d) => d,
        Err(e) => return skip(&e),
    };
    assert_eq!(bridge.exists(), had_bridge, "the private dockerd changed the host's docker0");
    let t = Duration::from_secs(60);

    // docker info reads `reaper --version`: the commit is the init version, and nothing fails
    // to parse (dockerd runs it at start-up and on every info).
    let commit = commit_of(&reaper);
    assert_ne!(commit, "", "no commit in reaper --version");
    let info = ok(&mut d.docker(["info", "--format", "{{.InitBinary}} {{.InitCommit.ID}}"]), t);
    assert_eq!(info, format!("{} {commit}", reaper.display()), "docker info");
    assert!(!d.log().contains("failed to parse"), "dockerd could not parse reaper --version:\n{}", d.log());
    assert!(!d.log().contains("failed to retrieve"), "dockerd could not run reaper --version:\n{}", d.log());

    let image = format!("{}:e2e", unique("busybox"));
    let ctx = busybox_context(&d.dir).unwrap_or_else(|e| panic!("{e}"));
    let build = Instant::now();
    ok(d.docker(["build", "-q", "-t", &image]).arg(&ctx), Duration::from_secs(300));
    println!("figure: busybox image built in {}", secs(build.elapsed()));

    let subst = [("my-image", image.as_str())];
    let docker_run = |extra: &[&str], command: &[&str], timeout: Duration| {
        let argv = recipe_line("docker run", "docker run --init my-image", extra, &subst, command);
        run(&mut d.docker(&argv[1..]), timeout)
    };
    let kill_after_run = |extra: &[&str], command: &[&str]| {
        let argv =
            recipe_line("docker run", "docker run --init -e REAPER_KILL_AFTER=", extra, &subst, command);
        run(&mut d.docker(&argv[1..]), t)
    };

    // PID 1 is docker-init = reaper, started as `docker-init -- CMD ARGS`.
    let out = docker_run(&["--rm"], &["cat", "/proc/1/cmdline"], t);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(argv(&out.stdout), ["/sbin/docker-init", "--", "cat", "/proc/1/cmdline"]);
    let out = docker_run(&["--rm"], &["/sbin/docker-init", "--version"], t);
    assert_eq!(out.stdout, format!("reaper {} - git.{commit}\n", env!("CARGO_PKG_VERSION")), "{out:?}");
    // README "Diagnosing zombies": under --init the listing is `/sbin/docker-init --ps`.
    let out = docker_run(&["--rm"], &["/sbin/docker-init", "--ps"], t);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("PID 1 is reaper: it reaps orphans."), "{out:?}");

    // The health check of docs/probe.md: under --init the binary is /sbin/docker-init.
    let out =
        docker_run(&["--rm"], &["/sbin/docker-init", "--probe", "file:/", "--probe", "tcp:127.0.0.1:1"], t);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (1, "unhealthy: file:/ ok (exists); tcp:127.0.0.1:1 failed (Connection refused)\n"),
        "{out:?}"
    );

    // Exit codes pass through.
    for (script, want) in
        [("exit 0", 0), ("exit 3", 3), ("kill -TERM $$", 143), ("exec /no/such/command", 127)]
    {
        let out = docker_run(&["--rm"], &["sh", "-c", script], t);
        assert_eq!(out.code, want, "{script}: {out:?}");
    }
    let out = docker_run(&["--rm"], &["/no/such/command"], t);
    assert_eq!(out.code, 127, "{out:?}");
    assert!(out.stderr.contains("reaper: cannot run '/no/such/command'"), "{out:?}");

    // docker stop is fast on a TERM-handling command; the host sees reaper as PID 1.
    let name = unique("stop");
    let out = docker_run(&["-d", "--name", &name], &["sh", "-c", TERM_HANDLER], t);
    assert_eq!(out.code, 0, "{out:?}");
    wait_for_log(&|| ok(&mut d.docker(["logs", &name]), t), "READY");
    let pid = ok(&mut d.docker(["inspect", "-f", "{{.State.Pid}}", &name]), t);
    let exe = std::fs::read(format!("/proc/{pid}/exe")).expect("PID 1's executable");
    assert!(exe == std::fs::read(&reaper).expect("reaper"), "PID 1 is not {}", reaper.display());
    let out = run(&mut d.docker(["stop", "-t", "10", &name]), t);
    assert_eq!(out.code, 0, "{out:?}");
    println!("figure: docker stop, --init, TERM-handling command: {}", secs(out.elapsed));
    assert!(out.elapsed < Duration::from_secs(3), "docker stop took {:?}", out.elapsed);
    assert_eq!(ok(&mut d.docker(["inspect", "-f", "{{.State.ExitCode}}", &name]), t), "0");

    // -e REAPER_KILL_AFTER=1s caps a TERM-ignoring command: exit 137 after 1 s, not 10.
    let name = unique("killafter");
    let out = kill_after_run(&["-d", "--name", &name], &["sh", "-c", TERM_IGNORER]);
    assert_eq!(out.code, 0, "{out:?}");
    wait_for_log(&|| ok(&mut d.docker(["logs", &name]), t), "READY");
    let out = run(&mut d.docker(["stop", "-t", "10", &name]), t);
    assert_eq!(out.code, 0, "{out:?}");
    println!(
        "figure: docker stop -t 10, --init -e REAPER_KILL_AFTER=1s, TERM ignored: {}",
        secs(out.elapsed)
    );
    assert!(
        out.elapsed >= Duration::from_millis(900),
        "gone before the kill-after deadline: {:?}",
        out.elapsed
    );
    assert!(out.elapsed < Duration::from_secs(4), "docker stop took {:?}", out.elapsed);
    assert_eq!(ok(&mut d.docker(["inspect", "-f", "{{.State.ExitCode}}", &name]), t), "137");

    // Orphans are reaped by docker-init (reaper's comm is its file name there).
    let out = docker_run(&["--rm"], &["sh", "-c", &orphan_storm(100)], Duration::from_secs(90));
    println!(
        "figure: 100 orphans under --init: {} ({})",
        secs(out.elapsed),
        out.stdout.trim().replace('\n', ", ")
    );
    assert_eq!(out.code, 0, "zombies left behind: {out:?}");
    assert!(out.stdout.contains("pid1=docker-init"), "{out:?}");
    assert!(adopted(&out.stdout) >= 80, "{out:?}");

    assert!(!d.log().contains("failed to parse"), "{}", d.log());
    drop(d);
    assert_eq!(bridge.exists(), had_bridge, "the private dockerd changed the host's docker0");
    println!("figure: private dockerd test in total: {}", secs(total.elapsed()));
}

/// Polls `logs` until it contains `marker`.
fn wait_for_log(logs: &dyn Fn() -> String, marker: &str) {
    let mut last = String::new();
    let seen = wait_until(Duration::from_secs(30), || {
        last = logs();
        last.contains(marker)
    });
    assert!(seen, "no {marker:?} in the output: {last:?}");
}

// --- podman -------------------------------------------------------------------------------

/// podman with a root, run root and tmpdir of its own, removed (unmounted first) when dropped.
struct Podman {
    dir: PathBuf,
    /// containers.conf: the README's recipe plus this machine's settings.
    conf: PathBuf,
    /// The same without the recipe (podman's own init, catatonit, and infra image).
    plain: PathBuf,
}

impl Podman {
    fn start(reaper: &Path) -> Result<Podman, String> {
        let dir = tempdir("podman");
        let p = Podman { conf: dir.join("containers.conf"), plain: dir.join("plain.conf"), dir };
        let hard = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .map_err(|e| e.to_string())?
            .1;
        // What podman 4.3 needed on this machine kind: its default ulimits exceed the hard limit
        // (no CAP_SYS_RESOURCE), crun fails on a hybrid cgroup layout, no network plugins.
        let machine = format!(
            "[containers]\ndefault_ulimits = [\"nofile={hard}:{hard}\", \"nproc=32768:32768\"]\nnetns = \"none\"\n\
             [engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\nruntime = \"runc\"\n"
        );
        let recipe = recipe("containers.conf").replace(REAPER_PATH, reaper.to_str().expect("utf-8"));
        std::fs::write(&p.conf, merge_toml(&[&recipe, &machine])).map_err(|e| e.to_string())?;
        std::fs::write(&p.plain, merge_toml(&[&machine])).map_err(|e| e.to_string())?;
        let start = Instant::now();
        let out = try_run(
            &mut p.podman(["info", "--format", "{{.Host.OCIRuntime.Name}}"]),
            Duration::from_secs(60),
        );
        match out {
            Some(o) if o.code == 0 && o.stdout.trim() == "runc" => {}
            other => return Err(format!("podman cannot start here: {other:?}")),
        }
        println!("figure: podman info with a private root: {}", secs(start.elapsed()));
        Ok(p)
    }

    /// `podman` with the private directories and `conf` as containers.conf.
    fn command(&self, conf: &Path) -> Command {
        let mut cmd = Command::new("podman");
        let d = |n: &str| self.dir.join(n);
        cmd.arg("--root").arg(d("root")).arg("--runroot").arg(d("runroot")).arg("--tmpdir").arg(d("tmp"));
        cmd.args(["--storage-driver", "overlay"]).env("CONTAINERS_CONF", conf);
        cmd
    }

    /// `podman ARGS` with the recipe's containers.conf.
    fn podman<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(&self, args: I) -> Command {
        let mut cmd = self.command(&self.conf);
        cmd.args(args);
        cmd
    }

    /// Builds the busybox image (FROM scratch, no reaper in it).
    fn busybox(&self) -> String {
        let image = format!("localhost/{}:e2e", unique("busybox"));
        let ctx = busybox_context(&self.dir).unwrap_or_else(|e| panic!("{e}"));
        let start = Instant::now();
        ok(self.podman(["build", "-q", "-t", &image]).arg(&ctx), Duration::from_secs(300));
        println!("figure: podman build of the busybox image: {}", secs(start.elapsed()));
        image
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let t = Duration::from_secs(60);
        let _ = try_run(&mut self.podman(["pod", "rm", "-f", "-a"]), t);
        let _ = try_run(&mut self.podman(["rm", "-f", "-a"]), t);
        // conmon names the run root on its command line.
        common::kill_processes_using(&self.dir);
        remove_tree(&self.dir);
    }
}

/// TOML documents merged by table (`[containers]`, `[engine]`), keys in order; a key set twice
/// is a bug in the test.
fn merge_toml(docs: &[&str]) -> String {
    let mut tables: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for doc in docs {
        let mut table = String::new();
        for line in doc.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            if line.starts_with('[') {
                table = line.to_owned();
            } else {
                tables.entry(table.clone()).or_default().push(line.to_owned());
            }
        }
    }
    tables.iter().map(|(t, lines)| format!("{t}\n{}\n", lines.join("\n"))).collect::<Vec<_>>().join("\n")
}

fn podman_setup() -> Option<(PathBuf, Podman)> {
    if !common::is_root() || common::which("podman").is_none() {
        skip("no podman (needs root and podman, runc: scripts/install-deps)");
        return None;
    }
    let reaper = common::static_binary().unwrap_or_else(|e| panic!("{e}"));
    match Podman::start(&reaper) {
        Ok(p) => Some((reaper, p)),
        Err(e) => {
            skip(&e);
            None
        }
    }
}

#[test]
fn podman_run_init_is_reaper() {
    let total = Instant::now();
    let Some((reaper, p)) = podman_setup() else { return };
    let t = Duration::from_secs(60);
    let image = p.busybox();
    let version = format!("reaper {} - git.{}\n", env!("CARGO_PKG_VERSION"), commit_of(&reaper));
    let subst = [("my-image", image.as_str()), (REAPER_PATH, reaper.to_str().expect("utf-8"))];
    let line = |prefix: &str, extra: &[&str], command: &[&str]| {
        recipe_line("podman", prefix, extra, &subst, command)[1..].to_vec()
    };

    // init_path from containers.conf: PID 1 is /run/podman-init = reaper, as `-- CMD ARGS`.
    let out =
        run(&mut p.podman(line("podman run --init my-image", &["--rm"], &["cat", "/proc/1/cmdline"])), t);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(argv(&out.stdout), ["/run/podman-init", "--", "cat", "/proc/1/cmdline"]);
    let out = run(
        &mut p.podman(line("podman run --init my-image", &["--rm"], &["/run/podman-init", "--version"])),
        t,
    );
    assert_eq!(out.stdout, version, "init_path in containers.conf: {out:?}");
    // README "Diagnosing zombies": under podman's --init the listing is `/run/podman-init --ps`.
    let out =
        run(&mut p.podman(line("podman run --init my-image", &["--rm"], &["/run/podman-init", "--ps"])), t);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("PID 1 is reaper: it reaps orphans."), "{out:?}");

    // --init-path on the command line, with a containers.conf that does not name reaper.
    let args = line("podman run --init --init-path", &["--rm"], &["/run/podman-init", "--version"]);
    let out = run(p.command(&p.plain).args(&args), t);
    assert_eq!(out.stdout, version, "--init-path: {out:?}");
    let args = line("podman run --init --init-path", &["--rm"], &["cat", "/proc/1/cmdline"]);
    let out = run(p.command(&p.plain).args(&args), t);
    assert_eq!(argv(&out.stdout), ["/run/podman-init", "--", "cat", "/proc/1/cmdline"], "{out:?}");

    // Exit codes pass through.
    for (script, want) in
        [("exit 0", 0), ("exit 3", 3), ("kill -TERM $$", 143), ("exec /no/such/command", 127)]
    {
        let out = run(&mut p.podman(line("podman run --init my-image", &["--rm"], &["sh", "-c", script])), t);
        assert_eq!(out.code, want, "{script}: {out:?}");
    }
    let out = run(&mut p.podman(line("podman run --init my-image", &["--rm"], &["/no/such/command"])), t);
    assert_eq!(out.code, 127, "{out:?}");
    assert!(out.stderr.contains("reaper: cannot run '/no/such/command'"), "{out:?}");

    // podman stop is fast on a TERM-handling command (podman's own timeout is 10 s).
    let name = unique("stop");
    ok(
        &mut p.podman(line(
            "podman run --init my-image",
            &["-d", "--name", &name],
            &["sh", "-c", TERM_HANDLER],
        )),
        t,
    );
    wait_for_log(&|| ok(&mut p.podman(["logs", &name]), t), "READY");
    let out = run(&mut p.podman(["stop", "-t", "10", &name]), t);
    assert_eq!(out.code, 0, "{out:?}");
    println!("figure: podman stop, --init, TERM-handling command: {}", secs(out.elapsed));
    assert!(out.elapsed < Duration::from_secs(3), "podman stop took {:?}", out.elapsed);
    assert_eq!(ok(&mut p.podman(["inspect", "-f", "{{.State.ExitCode}}", &name]), t), "0");

    drop(p);
    println!("figure: podman --init test in total: {}", secs(total.elapsed()));
}

#[test]
fn podman_pod_with_reaper_as_infra_reaps_the_orphans() {
    let total = Instant::now();
    let Some((reaper, p)) = podman_setup() else { return };
    let t = Duration::from_secs(60);
    let rel = reaper.strip_prefix(root()).expect("the static binary lies in the build context");
    let pause = format!("{PAUSE_IMAGE}-{}", std::process::id());
    let image = p.busybox();
    let pod = unique("pod");
    let subst = [("my-image", image.as_str()), ("my-pod", pod.as_str()), (PAUSE_IMAGE, pause.as_str())];
    let line = |prefix: &str, extra: &[&str], command: &[&str]| {
        recipe_line("podman", prefix, extra, &subst, command)[1..].to_vec()
    };

    // reaper's pause image, from Dockerfile.local (pulls nothing).
    let arg = format!("REAPER_BINARY={}", rel.display());
    let build = Instant::now();
    ok(
        p.podman(line("podman build -f Dockerfile.local --target pause", &["-q", "--build-arg", &arg], &[]))
            .current_dir(root()),
        t,
    );
    println!("figure: podman build of the pause image: {}", secs(build.elapsed()));

    // The pod: its infra container is `reaper --pause --warn-on-reap`, PID 1 of the pod's PID
    // namespace; a container in the pod leaves orphans, which the infra reaper reaps.
    ok(&mut p.podman(line("podman pod create", &[], &[])), t);
    let out = run(&mut p.podman(line("podman run --pod", &["--rm"], &["sh", "-c", &orphan_storm(50)])), t);
    println!(
        "figure: 50 orphans in a pod: {} ({})",
        secs(out.elapsed),
        out.stdout.trim().replace('\n', ", ")
    );
    assert_eq!(out.code, 0, "zombies left in the pod: {out:?}");
    assert!(out.stdout.contains("pid1=reaper"), "{out:?}");
    let n = adopted(&out.stdout);
    assert!(n >= 40, "{out:?}");
    let infra = ok(&mut p.podman(["pod", "inspect", &pod, "--format", "{{.InfraContainerID}}"]), t);
    // reaper logs to stderr, which `podman logs` passes on as its own.
    let reaps = || run(&mut p.podman(["logs", &infra]), t).stderr.matches("reaped pid").count();
    assert!(wait_until(Duration::from_secs(10), || reaps() >= n), "infra logged {} reaps, want {n}", reaps());
    let infra_pid: i32 =
        ok(&mut p.podman(["inspect", "-f", "{{.State.Pid}}", &infra]), t).parse().expect("pid");
    assert!(zombies_under(infra_pid).is_empty(), "zombies under the infra reaper");

    // podman pod stop ends the infra reaper with 0.
    let out = run(&mut p.podman(line("podman pod stop", &[], &[])), t);
    assert_eq!(out.code, 0, "{out:?}");
    println!("figure: podman pod stop: {}", secs(out.elapsed));
    assert!(out.elapsed < Duration::from_secs(3), "podman pod stop took {:?}", out.elapsed);
    assert_eq!(ok(&mut p.podman(["inspect", "-f", "{{.State.ExitCode}}", &infra]), t), "0");

    // containers.conf's infra_image alone makes reaper every pod's infra: `/reaper --pause`.
    let conf = std::fs::read_to_string(&p.conf).expect("containers.conf").replace(PAUSE_IMAGE, &pause);
    std::fs::write(&p.conf, conf).expect("containers.conf");
    let pod2 = unique("pod");
    ok(&mut p.podman(["pod", "create", "--name", &pod2, "--share", "+pid"]), t);
    ok(&mut p.podman(["pod", "start", &pod2]), t);
    let infra = ok(&mut p.podman(["pod", "inspect", &pod2, "--format", "{{.InfraContainerID}}"]), t);
    let what = ok(&mut p.podman(["inspect", "-f", "{{.ImageName}} {{.Path}} {{.Args}}", &infra]), t);
    assert_eq!(what, format!("{pause}:latest /reaper [--pause]"));
    ok(&mut p.podman(["pod", "stop", &pod2]), t);
    assert_eq!(ok(&mut p.podman(["inspect", "-f", "{{.State.ExitCode}}", &infra]), t), "0");

    drop(p);
    println!("figure: podman pod test in total: {}", secs(total.elapsed()));
}
