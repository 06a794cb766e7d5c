//! End-to-end tests against the real Docker Engine: the image from the repository's Dockerfile
//! (its `local` and `pause-local` targets, which pull nothing), with reaper as PID 1 of real
//! containers, driven by the docker CLI the way users drive it.
//!
//! Every test first asks `docker info`; with no engine answering it prints
//! "skipped: no Docker engine" and passes. Otherwise the first test to get here builds the
//! static binary (scripts/build-static, in target/static so it never waits on the cargo lock
//! of the running `cargo test`), the images (tagged uniquely and labelled with this process's
//! pid), and a test image that adds Debian's busybox-static as the workload's shell. Containers are removed by a
//! guard when each test ends, the images when the test process exits; images left by a test
//! process that was killed are removed by the next run.
//!
//! Measured figures are printed as `figure: ...` lines (see them with `--nocapture`).

mod common;

use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use common::{tempdir, wait_until, zombies_under};

/// Label on every image and container this file creates; the value is the test process's pid.
const LABEL: &str = "reaper-e2e.pid";
const BUSYBOX: &str = "/bin/busybox";

/// The images one test process built.
struct Images {
    /// `--target local`: only /reaper, ENTRYPOINT ["/reaper", "--"].
    reaper: String,
    /// `--target pause-local`: ENTRYPOINT ["/reaper", "--pause"].
    pause: String,
    /// `reaper` plus busybox as /bin/sh and friends.
    test: String,
}

static IMAGES: OnceLock<Option<Result<Images, String>>> = OnceLock::new();

/// The tests take turns: the engine is the bottleneck (they ran slower in parallel than one
/// by one here), and a timed `docker stop` must not include another test's load.
static SERIAL: Mutex<()> = Mutex::new(());

/// The images and this test's turn, or `None` when no Docker engine answers.
fn setup() -> Option<(MutexGuard<'static, ()>, &'static Images)> {
    let turn = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    images().map(|images| (turn, images))
}

/// The images, or `None` (after printing the skip notice) when no Docker engine answers.
fn images() -> Option<&'static Images> {
    let state = IMAGES.get_or_init(|| {
        if !engine_answers() {
            return None;
        }
        remove_stale_images();
        let start = Instant::now();
        let built = build_images();
        eprintln!("static binary and images built in {}", secs(start.elapsed()));
        if let Ok(images) = &built {
            register_cleanup(images);
        }
        Some(built)
    });
    match state {
        None => {
            // Straight to stderr, not eprintln!: the test harness captures the macros' output
            // of passing tests, and a skip must be visible in a plain `cargo test` run.
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "skipped: no Docker engine");
            None
        }
        Some(Ok(images)) => Some(images),
        Some(Err(e)) => panic!("cannot build the test images: {e}"),
    }
}

/// Output of one command run with a timeout.
#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

/// Runs `cmd` to completion, capturing output; panics if it takes longer than `timeout`.
fn run(cmd: &mut Command, timeout: Duration) -> Out {
    try_run(cmd, timeout).unwrap_or_else(|e| panic!("{e}"))
}

fn try_run(cmd: &mut Command, timeout: Duration) -> Result<Out, String> {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().map_err(|e| format!("{cmd:?}: {e}"))?;
    let reader = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = pipe.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = reader(Box::new(child.stdout.take().expect("stdout")));
    let err = reader(Box::new(child.stderr.take().expect("stderr")));
    let status = loop {
        if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
            break st;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{cmd:?} did not finish within {timeout:?}"));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = start.elapsed();
    Ok(Out {
        code: common::exit_code(status),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
        elapsed,
    })
}

fn docker<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut c = Command::new("docker");
    c.args(args);
    c
}

/// `docker ARGS`, which must succeed; its stdout, trimmed.
fn docker_ok(args: &[&str], timeout: Duration) -> String {
    let out = run(&mut docker(args), timeout);
    assert_eq!(out.code, 0, "docker {args:?} failed: {out:?}");
    out.stdout.trim().to_owned()
}

fn engine_answers() -> bool {
    matches!(
        try_run(
            &mut docker(["info", "--format", "{{.ServerVersion}}"]),
            Duration::from_secs(20),
        ),
        Ok(Out { code: 0, ref stdout, .. }) if !stdout.trim().is_empty()
    )
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Builds the fully static binary with the project's one documented build, scripts/build-static
/// (musl, else glibc +crt-static), into target/static: a target dir of its own, so it never
/// waits on the cargo lock of the running `cargo test`. Returns the binary's path relative to
/// the repository root: it must lie inside the build context (.dockerignore lets
/// target/static/*/release/reaper in).
fn build_static_binary() -> Result<String, String> {
    let script = root().join("scripts/build-static");
    let out = try_run(
        Command::new(&script)
            .current_dir(root())
            .env("CARGO_TARGET_DIR", root().join("target/static"))
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("CARGO_BUILD_RUSTFLAGS")
            .env_remove("CARGO_BUILD_TARGET"),
        Duration::from_secs(900),
    )?;
    if out.code != 0 {
        return Err(format!("{} failed: {}", script.display(), out.stderr));
    }
    let path = PathBuf::from(out.stdout.lines().last().unwrap_or_default().trim());
    let rel = path
        .strip_prefix(root())
        .map_err(|_| format!("{} is outside the build context {}", path.display(), root().display()))?;
    if !path.is_file() {
        return Err(format!("{} printed {}, which is no file", script.display(), path.display()));
    }
    eprintln!("static binary: {}", rel.display());
    Ok(rel.to_string_lossy().into_owned())
}

fn build_images() -> Result<Images, String> {
    let binary = build_static_binary()?;
    let pid = std::process::id();
    let stamp =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let tag = |what: &str| format!("reaper-e2e-{what}:{pid}-{stamp}");
    let images = Images { reaper: tag("local"), pause: tag("pause"), test: tag("busybox") };
    let label = format!("{LABEL}={pid}");
    for (target, image) in [("local", &images.reaper), ("pause-local", &images.pause)] {
        let arg = format!("REAPER_BINARY={binary}");
        let out = try_run(
            docker(["build", "--target", target, "--build-arg", &arg, "--label", &label, "-t", image, "."])
                .current_dir(root()),
            Duration::from_secs(300),
        )?;
        if out.code != 0 {
            return Err(format!("docker build --target {target}: {out:?}"));
        }
    }

    // The workload's shell: busybox, which must be static to run in a scratch image.
    let ctx = tempdir("docker-context");
    std::fs::copy(BUSYBOX, ctx.join("busybox"))
        .map_err(|e| format!("{BUSYBOX}: {e} (install Debian's busybox-static, as .ci/run does)"))?;
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            r#"FROM {base}
USER 0:0
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN ["/bin/busybox", "mkdir", "-m", "1777", "/tmp"]
USER 65534:65534
"#,
            base = images.reaper
        ),
    )
    .map_err(|e| e.to_string())?;
    let out = try_run(
        docker(["build", "--label", &label, "-t", &images.test, "."]).current_dir(&ctx),
        Duration::from_secs(300),
    )?;
    let _ = std::fs::remove_dir_all(&ctx);
    if out.code != 0 {
        return Err(format!(
            "docker build of the busybox test image (is {BUSYBOX} static? install busybox-static): {out:?}"
        ));
    }
    Ok(images)
}

/// Removes the images at process exit (the test harness returns from main normally, which
/// runs atexit handlers); a test that fails does not skip this.
fn register_cleanup(images: &Images) {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    let _ = NAMES.set(vec![images.test.clone(), images.pause.clone(), images.reaper.clone()]);
    extern "C" fn cleanup() {
        if let Some(names) = NAMES.get() {
            let mut args = vec!["rmi", "-f"];
            args.extend(names.iter().map(String::as_str));
            let _ = try_run(&mut docker(&args), Duration::from_secs(60));
        }
    }
    // SAFETY: registering a plain extern "C" fn with no arguments.
    unsafe { libc::atexit(cleanup) };
}

/// Images and containers labelled by an earlier test process that is gone (killed before its
/// cleanup ran).
fn remove_stale_images() {
    let format = format!("{{{{.ID}}}} {{{{index .Labels \"{LABEL}\"}}}}");
    for kind in ["ps", "images"] {
        let mut args = vec![kind, "--filter", "label=reaper-e2e.pid", "--format", &format];
        if kind == "ps" {
            args.insert(1, "-a");
        }
        let Ok(out) = try_run(&mut docker(&args), Duration::from_secs(30)) else {
            continue;
        };
        for line in out.stdout.lines() {
            let Some((id, pid)) = line.split_once(' ') else {
                continue;
            };
            let Ok(pid) = pid.trim().parse::<i32>() else {
                continue;
            };
            // SAFETY: kill(2) with signal 0 only checks for existence.
            let gone = unsafe { libc::kill(pid, 0) } != 0
                && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
            if gone {
                let rm = if kind == "ps" { "rm" } else { "rmi" };
                let _ = try_run(&mut docker([rm, "-f", id]), Duration::from_secs(60));
            }
        }
    }
}

/// A container name, unique in this process, removed (`docker rm -f`) when dropped, so a
/// failing test leaves nothing running.
struct Container {
    name: String,
}

impl Container {
    fn new(what: &str) -> Container {
        static N: AtomicUsize = AtomicUsize::new(0);
        Container {
            name: format!("reaper-e2e-{}-{what}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst)),
        }
    }

    /// `docker run --name NAME --label ... ` followed by `args`.
    fn run_args<'a>(&'a self, label: &'a str, args: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec!["run", "--name", &self.name, "--label", label];
        v.extend_from_slice(args);
        v
    }

    /// Starts the container detached.
    fn start(&self, args: &[&str]) {
        let label = label();
        let mut v = self.run_args(&label, &["-d"]);
        v.extend_from_slice(args);
        docker_ok(&v, Duration::from_secs(60));
    }

    /// Runs the container in the foreground (`--rm`) and returns the CLI's result.
    fn run(&self, args: &[&str], timeout: Duration) -> Out {
        let label = label();
        let mut v = self.run_args(&label, &["--rm"]);
        v.extend_from_slice(args);
        run(&mut docker(&v), timeout)
    }

    fn logs(&self) -> String {
        let out = run(&mut docker(["logs", &self.name]), Duration::from_secs(30));
        out.stdout + &out.stderr
    }

    /// Polls the container's output until it contains `marker`.
    fn wait_for_log(&self, marker: &str, timeout: Duration) {
        let mut logs = String::new();
        let seen = wait_until(timeout, || {
            logs = self.logs();
            logs.contains(marker) || !self.running()
        });
        assert!(seen && logs.contains(marker), "{}: no {marker:?} in the output: {logs:?}", self.name);
    }

    fn running(&self) -> bool {
        let out =
            run(&mut docker(["inspect", "-f", "{{.State.Running}}", &self.name]), Duration::from_secs(30));
        out.stdout.trim() == "true"
    }

    /// `docker wait`: the exit code, once the container has stopped.
    fn wait(&self, timeout: Duration) -> i32 {
        let code = docker_ok(&["wait", &self.name], timeout);
        code.parse().unwrap_or_else(|_| panic!("docker wait printed {code:?}"))
    }

    /// The container's main process as seen from the host.
    fn host_pid(&self) -> i32 {
        let pid = docker_ok(&["inspect", "-f", "{{.State.Pid}}", &self.name], Duration::from_secs(30));
        pid.parse().unwrap_or_else(|_| panic!("bad pid {pid:?}"))
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = try_run(&mut docker(["rm", "-f", "-v", &self.name]), Duration::from_secs(60));
    }
}

fn label() -> String {
    format!("{LABEL}={}", std::process::id())
}

/// A temp dir the container user (65534) can write into, for `-v DIR:/out`.
fn shared_dir(tag: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempdir(tag);
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    dir
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

// ---------------------------------------------------------------------------------------------

#[test]
fn image_holds_only_reaper_runs_as_nobody_and_prints_version() {
    let Some((_serial, img)) = setup() else {
        return;
    };

    // `reaper --version` in the image (the entrypoint is `/reaper --`, so override it).
    let c = Container::new("version");
    let out = c.run(&["--entrypoint", "/reaper", &img.reaper, "--version"], Duration::from_secs(60));
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout.trim(), format!("reaper {}", env!("CARGO_PKG_VERSION")));

    // Without a command, the fixed `--` entrypoint is a usage error (2), not a crash.
    let c = Container::new("nocmd");
    let out = c.run(&[&img.reaper], Duration::from_secs(60));
    assert_eq!(out.code, 2, "{out:?}");

    // Configuration: entrypoint, non-root user, OCI labels (version in sync with Cargo.toml).
    let inspect = |f: &str| docker_ok(&["image", "inspect", "-f", f, &img.reaper], Duration::from_secs(30));
    assert_eq!(inspect("{{json .Config.Entrypoint}}"), r#"["/reaper","--"]"#);
    assert_eq!(inspect("{{.Config.User}}"), "65534:65534");
    assert_eq!(inspect("{{len .RootFS.Layers}}"), "1");
    for (key, want) in [
        ("title", Some("reaper")),
        ("description", None),
        ("source", None),
        ("licenses", Some("MIT")),
        ("version", Some(env!("CARGO_PKG_VERSION"))),
    ] {
        let value = inspect(&format!(
            "{{{{index .Config.Labels \"org.opencontainers.image.{key}\"}}}}|{{{{with .Config.Labels}}}}{{{{range $k, $v := .}}}}{{{{$k}}}};{{{{end}}}}{{{{end}}}}"
        ));
        let (v, keys) = value.split_once('|').expect("separator");
        assert!(
            keys.split(';').any(|k| k == format!("org.opencontainers.image.{key}")),
            "label {key} missing: {keys}"
        );
        if let Some(want) = want {
            assert_eq!(v, want, "label {key}");
        }
    }
    let pause = |f: &str| docker_ok(&["image", "inspect", "-f", f, &img.pause], Duration::from_secs(30));
    assert_eq!(pause("{{json .Config.Entrypoint}}"), r#"["/reaper","--pause"]"#);

    // The one layer holds exactly one file, /reaper, mode 0755 (runs as any user).
    let dir = tempdir("image-save");
    let tar = dir.join("image.tar");
    docker_ok(&["save", "-o", tar.to_str().expect("utf-8"), &img.reaper], Duration::from_secs(60));
    let untar = run(Command::new("tar").arg("-xf").arg(&tar).arg("-C").arg(&dir), Duration::from_secs(60));
    assert_eq!(untar.code, 0, "{untar:?}");
    // manifest.json: [{"Config":"…","RepoTags":[…],"Layers":["<layer archive>",…]}]
    let manifest = std::fs::read_to_string(dir.join("manifest.json")).expect("manifest.json");
    let layers: Vec<&str> = manifest
        .split("\"Layers\":[")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .unwrap_or_else(|| panic!("no Layers in {manifest}"))
        .split(',')
        .map(|l| l.trim().trim_matches('"'))
        .collect();
    assert_eq!(layers.len(), 1, "{manifest}");
    let layer = dir.join(layers[0]);
    let listing = run(Command::new("tar").arg("-tvf").arg(&layer), Duration::from_secs(60));
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(listing.code, 0, "{listing:?}");
    let entries: Vec<&str> = listing.stdout.lines().collect();
    assert_eq!(entries.len(), 1, "expected only /reaper: {entries:?}");
    assert!(entries[0].starts_with("-rwxr-xr-x") && entries[0].ends_with(" reaper"), "{entries:?}");
    let size = inspect("{{.Size}}");
    println!("figure: image size {size} bytes (only /reaper)");
}

#[test]
fn exit_codes_pass_through() {
    let Some((_serial, img)) = setup() else {
        return;
    };
    for (script, want) in
        [("exit 0", 0), ("exit 3", 3), ("kill -TERM $$", 143), ("exec /no/such/command", 127)]
    {
        let c = Container::new("exit");
        let out = c.run(&[&img.test, "sh", "-c", script], Duration::from_secs(60));
        assert_eq!(out.code, want, "{script}: {out:?}");
    }
    // reaper's own status for a command it cannot start.
    let c = Container::new("exit");
    let out = c.run(&[&img.test, "/no/such/command"], Duration::from_secs(60));
    assert_eq!(out.code, 127, "{out:?}");
    assert!(out.stderr.contains("/no/such/command"), "{out:?}");
}

#[test]
fn docker_kill_usr1_reaches_the_command() {
    let Some((_serial, img)) = setup() else {
        return;
    };
    let c = Container::new("usr1");
    c.start(&[&img.test, "sh", "-c", r#"trap 'echo got USR1; exit 42' USR1; echo READY; sleep 1000 & wait"#]);
    c.wait_for_log("READY", Duration::from_secs(30));
    docker_ok(&["kill", "-s", "USR1", &c.name], Duration::from_secs(30));
    assert_eq!(c.wait(Duration::from_secs(20)), 42, "{}", c.logs());
    assert!(c.logs().contains("got USR1"));
}

#[test]
fn docker_stop_returns_at_once_for_a_term_handling_command() {
    let Some((_serial, img)) = setup() else {
        return;
    };
    let c = Container::new("stop");
    // The shell exits 0 on TERM; its background sleep is a leftover that reaper drains.
    c.start(&[&img.test, "sh", "-c", r#"trap 'exit 0' TERM; echo READY; sleep 1000 & wait"#]);
    c.wait_for_log("READY", Duration::from_secs(30));
    let out = run(&mut docker(["stop", "-t", "10", &c.name]), Duration::from_secs(30));
    assert_eq!(out.code, 0, "{out:?}");
    println!("figure: docker stop of a TERM-handling command: {}", secs(out.elapsed));
    // Well under Docker's own 10 s (the figure above is the measurement).
    assert!(out.elapsed < Duration::from_secs(5), "docker stop took {:?}", out.elapsed);
    assert_eq!(c.wait(Duration::from_secs(10)), 0, "{}", c.logs());
}

#[test]
fn kill_after_ends_a_term_ignoring_command_after_one_second() {
    let Some((_serial, img)) = setup() else {
        return;
    };
    let c = Container::new("killafter");
    // The fixed `--` entrypoint takes options from the environment.
    c.start(&[
        "-e",
        "REAPER_KILL_AFTER=1s",
        &img.test,
        "sh",
        "-c",
        r#"trap '' TERM; echo READY; while :; do sleep 1; done"#,
    ]);
    c.wait_for_log("READY", Duration::from_secs(30));
    let out = run(&mut docker(["stop", "-t", "10", &c.name]), Duration::from_secs(30));
    assert_eq!(out.code, 0, "{out:?}");
    println!("figure: docker stop -t 10 with REAPER_KILL_AFTER=1s, TERM ignored: {}", secs(out.elapsed));
    assert!(out.elapsed >= Duration::from_millis(900), "gone before --kill-after expired: {:?}", out.elapsed);
    assert!(out.elapsed < Duration::from_secs(6), "docker stop took {:?} (Docker's own: 10 s)", out.elapsed);
    assert_eq!(c.wait(Duration::from_secs(10)), 137, "{}", c.logs());
    assert!(c.logs().contains("SIGKILL"), "{}", c.logs());

    // The same through the flag, with the entrypoint overridden.
    let c = Container::new("killafter-flag");
    c.start(&[
        "--entrypoint",
        "/reaper",
        &img.test,
        "--kill-after",
        "1s",
        "--",
        "sh",
        "-c",
        r#"trap '' TERM; echo READY; while :; do sleep 1; done"#,
    ]);
    c.wait_for_log("READY", Duration::from_secs(30));
    let out = run(&mut docker(["stop", "-t", "10", &c.name]), Duration::from_secs(30));
    println!("figure: docker stop -t 10 with --kill-after 1s, TERM ignored: {}", secs(out.elapsed));
    assert!(out.elapsed < Duration::from_secs(6), "docker stop took {:?} (Docker's own: 10 s)", out.elapsed);
    assert_eq!(c.wait(Duration::from_secs(10)), 137, "{}", c.logs());
}

#[test]
fn leftovers_are_drained_before_the_container_exits() {
    let Some((_serial, img)) = setup() else {
        return;
    };
    let dir = shared_dir("drain");
    let volume = format!("{}:/out", dir.display());
    let c = Container::new("drain");
    // A background job that needs TERM to write its file; the command exits 0 once the job is
    // ready. reaper must TERM the leftover and wait for it before exiting.
    let script = r#"
        (trap 'touch /out/drained; exit 0' TERM; touch /out/ready; while :; do sleep 0.1; done) &
        while [ ! -e /out/ready ]; do sleep 0.05; done
        exit 0"#;
    let out = c.run(&["-v", &volume, &img.test, "sh", "-c", script], Duration::from_secs(60));
    assert_eq!(out.code, 0, "{out:?}");
    assert!(dir.join("ready").exists(), "the background job never ran");
    assert!(
        dir.join("drained").exists(),
        "the leftover did not get TERM (or no time to act on it) before the container exited: {out:?}"
    );
    println!("figure: docker run with a drained leftover: {}", secs(out.elapsed));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A busybox script: `count` orphans (`sleep 2` double-forked away), reports how many were
/// adopted by PID 1, then waits until none is left and no zombie exists in the PID namespace.
/// Exit 1 if zombies stay for ~30 s.
fn orphan_storm(count: usize) -> String {
    format!(
        r#"
i=0
while [ $i -lt {count} ]; do (sleep 2 &); i=$((i+1)); done
procs() {{ cat /proc/[0-9]*/stat 2>/dev/null; }}
echo "pid1=$(cat /proc/1/comm) adopted=$(procs | awk '$2=="(sleep)" && $4==1 {{n++}} END {{print n+0}}')"
n=0
while :; do
  z=$(procs | awk '$3=="Z" {{n++}} END {{print n+0}}')
  s=$(procs | awk '$2=="(sleep)" {{n++}} END {{print n+0}}')
  [ "$z" = 0 ] && [ "$s" = 0 ] && break
  n=$((n+1))
  if [ $n -gt 300 ]; then echo "zombies=$z sleeps=$s"; procs | awk '$3=="Z"' | head; exit 1; fi
  sleep 0.1
done
echo "zombies=0"
"#
    )
}

/// The `adopted=N` figure an `orphan_storm` printed.
fn adopted(out: &str) -> usize {
    out.split_whitespace().find_map(|w| w.strip_prefix("adopted=")).and_then(|n| n.parse().ok()).unwrap_or(0)
}

#[test]
fn no_zombie_is_left_after_an_orphan_storm() {
    let Some((_serial, img)) = setup() else {
        return;
    };
    let c = Container::new("storm");
    let out = c.run(&[&img.test, "sh", "-c", &orphan_storm(500)], Duration::from_secs(90));
    println!(
        "figure: orphan storm of 500 in a container: {} ({})",
        secs(out.elapsed),
        out.stdout.trim().replace('\n', ", ")
    );
    assert_eq!(out.code, 0, "zombies left behind: {out:?}");
    assert!(out.stdout.contains("pid1=reaper"), "{out:?}");
    // The orphans really were reaper's to reap (not reaped by the shell that made them).
    assert!(adopted(&out.stdout) >= 400, "{out:?}");
    assert!(out.stdout.contains("zombies=0"), "{out:?}");
}

#[test]
fn ctrl_c_through_docker_run_tty_ends_the_command_with_130() {
    let Some((_serial, img)) = setup() else {
        return;
    };
    let c = Container::new("tty");
    let label = label();
    let mut args = c.run_args(&label, &["--rm", "-t", "-i"]);
    args.extend_from_slice(&[&img.test, "sh", "-c", r#"echo "READY-$((6*7))"; sleep 1000"#]);

    let winsize = nix::pty::Winsize { ws_row: 24, ws_col: 80, ws_xpixel: 0, ws_ypixel: 0 };
    let pty = nix::pty::openpty(Some(&winsize), None).expect("openpty");
    let mut cmd = docker(&args);
    cmd.stdin(Stdio::from(pty.slave.try_clone().expect("dup")))
        .stdout(Stdio::from(pty.slave.try_clone().expect("dup")))
        .stderr(Stdio::from(pty.slave.try_clone().expect("dup")));
    // SAFETY: setsid and ioctl are async-signal-safe; the docker CLI gets the pty as its
    // controlling terminal, as in an interactive shell.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn docker run -t -i");
    drop(cmd);
    drop(pty.slave);

    let mut master = File::from(pty.master);
    let screen = Arc::new(Mutex::new(Vec::<u8>::new()));
    {
        let mut reader = master.try_clone().expect("dup master");
        let screen = Arc::clone(&screen);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                screen.lock().expect("lock").extend_from_slice(&buf[..n]);
            }
        });
    }
    let text = || String::from_utf8_lossy(&screen.lock().expect("lock")).into_owned();
    let ready = wait_until(Duration::from_secs(30), || {
        text().contains("READY-42") || !matches!(child.try_wait(), Ok(None))
    });
    assert!(ready && text().contains("READY-42"), "never ready: {:?}", text());
    let sent = Instant::now();
    master.write_all(b"\x03").expect("write ^C");
    let status = common::wait_child(&mut child, Duration::from_secs(20));
    let elapsed = sent.elapsed();
    let status = status.unwrap_or_else(|| {
        let _ = child.kill();
        panic!("docker run -t did not end after ^C: {:?}", text())
    });
    println!("figure: docker run -t, ^C to exit: {} (screen {:?})", secs(elapsed), text().trim());
    assert_eq!(common::exit_code(status), 130, "{:?}", text());
}

#[test]
fn pause_container_reaps_orphans_of_a_shared_pid_namespace() {
    let Some((_serial, img)) = setup() else {
        return;
    };
    // The pod sandbox: `reaper --pause` as PID 1 of the pod's PID namespace.
    let pause = Container::new("pause");
    pause.start(&[&img.pause]);
    assert!(wait_until(Duration::from_secs(10), || pause.running()), "{}", pause.logs());
    let pause_pid = pause.host_pid();

    // An app container in that namespace, without an init of its own (as in a
    // shareProcessNamespace pod): its orphans go to PID 1, the pause container.
    let app = Container::new("app");
    let pid_ns = format!("container:{}", pause.name);
    let out = app.run(
        &["--pid", &pid_ns, "--entrypoint", "/bin/sh", &img.test, "-c", &orphan_storm(200)],
        Duration::from_secs(90),
    );
    println!(
        "figure: 200 orphans reaped by the pause container: {} ({})",
        secs(out.elapsed),
        out.stdout.trim().replace('\n', ", ")
    );
    assert_eq!(out.code, 0, "zombies left in the shared namespace: {out:?}");
    assert!(out.stdout.contains("pid1=reaper"), "{out:?}");
    assert!(adopted(&out.stdout) >= 150, "{out:?}");
    // Seen from the host too: nothing under the pause container, certainly no zombie.
    assert!(
        wait_until(Duration::from_secs(10), || zombies_under(pause_pid).is_empty()),
        "zombies under the pause container: {:?}",
        zombies_under(pause_pid)
    );
    assert!(pause.running(), "the pause container died: {}", pause.logs());

    // The pause container stops at once on TERM, with status 0.
    let out = run(&mut docker(["stop", "-t", "10", &pause.name]), Duration::from_secs(30));
    assert_eq!(out.code, 0, "{out:?}");
    println!("figure: docker stop of the pause container: {}", secs(out.elapsed));
    assert!(out.elapsed < Duration::from_secs(2), "{:?}", out.elapsed);
    assert_eq!(pause.wait(Duration::from_secs(10)), 0, "{}", pause.logs());

    // The same with the ordinary image and the documented entrypoint override.
    let pause2 = Container::new("pause-override");
    pause2.start(&["--entrypoint", "/reaper", &img.reaper, "--pause"]);
    assert!(wait_until(Duration::from_secs(10), || pause2.running()), "{}", pause2.logs());
    let app = Container::new("app2");
    let pid_ns = format!("container:{}", pause2.name);
    let out = app.run(
        &["--pid", &pid_ns, "--entrypoint", "/bin/sh", &img.test, "-c", &orphan_storm(50)],
        Duration::from_secs(90),
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(adopted(&out.stdout) >= 40, "{out:?}");
}
