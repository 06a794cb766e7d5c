//! The Docker Engine side of the end-to-end tests (tests/docker.rs, tests/docker_ps.rs): the
//! images from the repository's Dockerfile.local (its `runtime` and `pause` targets, which pull
//! nothing) plus a busybox test image, containers removed when dropped, and the docker CLI
//! run with timeouts.
//!
//! Every test first asks `docker info`; with no engine answering it prints
//! "skipped: no Docker engine" and passes. Otherwise the first test to get here builds the
//! static binary (scripts/build-static, in target/static so it never waits on the cargo lock
//! of the running `cargo test`), the images (tagged uniquely and labelled with this process's
//! pid), and a test image that adds Debian's busybox-static as the workload's shell. Containers
//! are removed by a guard when each test ends, the images when the test process exits; images
//! left by a test process that was killed are removed by the next run.

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use super::{tempdir, wait_until};

/// Label on every image and container this file creates; the value is the test process's pid.
pub const LABEL: &str = "reaper-e2e.pid";
pub const BUSYBOX: &str = "/bin/busybox";

/// The images one test process built.
pub struct Images {
    /// Dockerfile.local, `--target runtime`: only /reaper, ENTRYPOINT ["/reaper", "--"].
    pub reaper: String,
    /// Dockerfile.local, `--target pause`: ENTRYPOINT ["/reaper", "--pause"].
    pub pause: String,
    /// `reaper` plus busybox as /bin/sh and friends.
    pub test: String,
}

pub static IMAGES: OnceLock<Option<Result<Images, String>>> = OnceLock::new();

/// The tests take turns: the engine is the bottleneck (they ran slower in parallel than one
/// by one here), and a timed `docker stop` must not include another test's load.
pub static SERIAL: Mutex<()> = Mutex::new(());

/// The images and this test's turn, or `None` when no Docker engine answers.
pub fn setup() -> Option<(MutexGuard<'static, ()>, &'static Images)> {
    let turn = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    images().map(|images| (turn, images))
}

/// The images, or `None` (after printing the skip notice) when no Docker engine answers.
pub fn images() -> Option<&'static Images> {
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
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

/// Runs `cmd` to completion, capturing output; panics if it takes longer than `timeout`.
pub fn run(cmd: &mut Command, timeout: Duration) -> Out {
    try_run(cmd, timeout).unwrap_or_else(|e| panic!("{e}"))
}

pub fn try_run(cmd: &mut Command, timeout: Duration) -> Result<Out, String> {
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
        code: super::exit_code(status),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
        elapsed,
    })
}

pub fn docker<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut c = Command::new("docker");
    c.args(args);
    c
}

/// `docker ARGS`, which must succeed; its stdout, trimmed.
pub fn docker_ok(args: &[&str], timeout: Duration) -> String {
    let out = run(&mut docker(args), timeout);
    assert_eq!(out.code, 0, "docker {args:?} failed: {out:?}");
    out.stdout.trim().to_owned()
}

pub fn engine_answers() -> bool {
    matches!(
        try_run(
            &mut docker(["info", "--format", "{{.ServerVersion}}"]),
            Duration::from_secs(20),
        ),
        Ok(Out { code: 0, ref stdout, .. }) if !stdout.trim().is_empty()
    )
}

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The static binary (`super::static_binary`) relative to the repository root: it must lie
/// inside the build context (.dockerignore lets target/static/*/release/reaper in).
pub fn build_static_binary() -> Result<String, String> {
    let path = super::static_binary()?;
    let rel = path
        .strip_prefix(root())
        .map_err(|_| format!("{} is outside the build context {}", path.display(), root().display()))?;
    Ok(rel.to_string_lossy().into_owned())
}

pub fn build_images() -> Result<Images, String> {
    let binary = build_static_binary()?;
    let pid = std::process::id();
    let stamp =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let tag = |what: &str| format!("reaper-e2e-{what}:{pid}-{stamp}");
    let images = Images { reaper: tag("local"), pause: tag("pause"), test: tag("busybox") };
    let label = format!("{LABEL}={pid}");
    for (target, image) in [("runtime", &images.reaper), ("pause", &images.pause)] {
        let arg = format!("REAPER_BINARY={binary}");
        let out = try_run(
            docker([
                "build",
                "-f",
                "Dockerfile.local",
                "--target",
                target,
                "--build-arg",
                &arg,
                "--label",
                &label,
                "-t",
                image,
                ".",
            ])
            .current_dir(root()),
            Duration::from_secs(300),
        )?;
        if out.code != 0 {
            return Err(format!("docker build -f Dockerfile.local --target {target}: {out:?}"));
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
pub fn register_cleanup(images: &Images) {
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
pub fn remove_stale_images() {
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
pub struct Container {
    pub name: String,
}

impl Container {
    pub fn new(what: &str) -> Container {
        static N: AtomicUsize = AtomicUsize::new(0);
        Container {
            name: format!("reaper-e2e-{}-{what}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst)),
        }
    }

    /// `docker run --name NAME --label ... ` followed by `args`.
    pub fn run_args<'a>(&'a self, label: &'a str, args: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec!["run", "--name", &self.name, "--label", label];
        v.extend_from_slice(args);
        v
    }

    /// Starts the container detached.
    pub fn start(&self, args: &[&str]) {
        let label = label();
        let mut v = self.run_args(&label, &["-d"]);
        v.extend_from_slice(args);
        docker_ok(&v, Duration::from_secs(60));
    }

    /// Runs the container in the foreground (`--rm`) and returns the CLI's result.
    pub fn run(&self, args: &[&str], timeout: Duration) -> Out {
        let label = label();
        let mut v = self.run_args(&label, &["--rm"]);
        v.extend_from_slice(args);
        run(&mut docker(&v), timeout)
    }

    pub fn logs(&self) -> String {
        let out = run(&mut docker(["logs", &self.name]), Duration::from_secs(30));
        out.stdout + &out.stderr
    }

    /// Polls the container's output until it contains `marker`.
    pub fn wait_for_log(&self, marker: &str, timeout: Duration) {
        let mut logs = String::new();
        let seen = wait_until(timeout, || {
            logs = self.logs();
            logs.contains(marker) || !self.running()
        });
        assert!(seen && logs.contains(marker), "{}: no {marker:?} in the output: {logs:?}", self.name);
    }

    pub fn running(&self) -> bool {
        let out =
            run(&mut docker(["inspect", "-f", "{{.State.Running}}", &self.name]), Duration::from_secs(30));
        out.stdout.trim() == "true"
    }

    /// `docker wait`: the exit code, once the container has stopped.
    pub fn wait(&self, timeout: Duration) -> i32 {
        let code = docker_ok(&["wait", &self.name], timeout);
        code.parse().unwrap_or_else(|_| panic!("docker wait printed {code:?}"))
    }

    /// The container's main process as seen from the host.
    pub fn host_pid(&self) -> i32 {
        let pid = docker_ok(&["inspect", "-f", "{{.State.Pid}}", &self.name], Duration::from_secs(30));
        pid.parse().unwrap_or_else(|_| panic!("bad pid {pid:?}"))
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = try_run(&mut docker(["rm", "-f", "-v", &self.name]), Duration::from_secs(60));
    }
}

pub fn label() -> String {
    format!("{LABEL}={}", std::process::id())
}

/// A temp dir the container user (65534) can write into, for `-v DIR:/out`.
pub fn shared_dir(tag: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempdir(tag);
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    dir
}

pub fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}
