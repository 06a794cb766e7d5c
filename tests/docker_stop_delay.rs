//! `--stop-delay` and `reaper --sleep` end to end on the machine's Docker Engine, in
//! `FROM scratch` images built here from the static binary (no registry, no network):
//! `docker stop` of a container with `--stop-delay 1s` keeps it working for a second before
//! its TERM handler runs, and `docker exec C /reaper --sleep 1` works in an image holding
//! nothing but /reaper. Prints "skipped: no Docker engine" where none answers.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use common::{run_captured, tempdir, wait_for_file};

/// The label tests/docker.rs also uses: a later run there removes what a killed run left.
const LABEL: &str = "reaper-e2e.pid";

struct Images {
    /// Only /reaper, ENTRYPOINT ["/reaper", "--"].
    scratch: String,
    /// The same plus busybox, for a shell in the workload.
    busybox: String,
}

static IMAGES: OnceLock<Option<Images>> = OnceLock::new();
/// One at a time: a timed `docker stop` must not include another test's engine load.
static SERIAL: Mutex<()> = Mutex::new(());

/// `docker ARGS` with a timeout: (exit code, stdout, stderr, how long it took).
fn docker(args: &[&str], timeout: Duration) -> (i32, String, String, Duration) {
    let mut cmd = Command::new("docker");
    cmd.args(args).env("DOCKER_BUILDKIT", "0").stdin(Stdio::null());
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let start = Instant::now();
    let (code, out, err) =
        run_captured(&mut cmd, timeout).unwrap_or_else(|| panic!("docker {args:?} took over {timeout:?}"));
    (code, String::from_utf8_lossy(&out).trim().to_owned(), err, start.elapsed())
}

fn docker_ok(args: &[&str]) -> String {
    let (code, out, err, _) = docker(args, Duration::from_secs(300));
    assert_eq!(code, 0, "docker {args:?}: {err}");
    out
}

fn setup() -> Option<(MutexGuard<'static, ()>, &'static Images)> {
    let turn = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    let images = IMAGES.get_or_init(|| {
        let info = docker(&["info", "--format", "{{.ServerVersion}}"], Duration::from_secs(20));
        (info.0 == 0 && !info.1.is_empty()).then(build_images)
    });
    match images {
        Some(images) => Some((turn, images)),
        None => {
            // Straight to stderr: the harness captures eprintln! of passing tests.
            let _ = writeln!(std::io::stderr(), "skipped: no Docker engine");
            None
        }
    }
}

fn build_images() -> Images {
    let binary = common::static_binary().unwrap_or_else(|e| panic!("static binary: {e}"));
    let ctx = tempdir("docker-stop-delay");
    std::fs::copy(&binary, ctx.join("reaper")).expect("copy the static binary");
    std::fs::copy("/bin/busybox", ctx.join("busybox")).expect("/bin/busybox (install busybox-static)");
    let tag = |what: &str| format!("reaper-e2e-{what}:{}-stopdelay", std::process::id());
    let images = Images { scratch: tag("scratch"), busybox: tag("busybox") };
    let dockerfiles = [
        (
            &images.scratch,
            "FROM scratch\nCOPY reaper /reaper\nUSER 65534:65534\nENTRYPOINT [\"/reaper\", \"--\"]\n",
        ),
        (
            &images.busybox,
            &*format!(
                "FROM {}\nUSER 0:0\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nUSER 65534:65534\n",
                images.scratch
            ),
        ),
    ];
    let label = format!("{LABEL}={}", std::process::id());
    for (image, dockerfile) in dockerfiles {
        std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
        docker_ok(&["build", "--label", &label, "-t", image, ctx.to_str().unwrap()]);
    }
    let _ = std::fs::remove_dir_all(&ctx);
    static NAMES: OnceLock<[String; 2]> = OnceLock::new();
    let _ = NAMES.set([images.busybox.clone(), images.scratch.clone()]);
    extern "C" fn remove_images() {
        if let Some([a, b]) = NAMES.get() {
            let _ = docker(&["rmi", "-f", a, b], Duration::from_secs(60));
        }
    }
    // SAFETY: registering a plain extern "C" fn; the harness exits through main's return.
    unsafe { libc::atexit(remove_images) };
    images
}

/// A container name, `docker rm -f`'d when dropped.
struct Container(String);

impl Container {
    fn start(what: &str, args: &[&str]) -> Container {
        let c = Container(format!("reaper-e2e-{}-{what}", std::process::id()));
        let label = format!("{LABEL}={}", std::process::id());
        let mut v = vec!["run", "-d", "--network", "none", "--name", &c.0, "--label", &label];
        v.extend_from_slice(args);
        docker_ok(&v);
        c
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.0], Duration::from_secs(60));
    }
}

/// Host times at which `path` grew, until `stop` is set.
fn watch_growth(
    path: &Path,
    stop: &'static std::sync::atomic::AtomicBool,
) -> std::thread::JoinHandle<Vec<Instant>> {
    let path = path.to_owned();
    std::thread::spawn(move || {
        let (mut seen, mut len) = (Vec::new(), 0);
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            let now = std::fs::metadata(&path).map_or(0, |m| m.len());
            if now > len {
                seen.push(Instant::now());
                len = now;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        seen
    })
}

#[test]
fn docker_stop_waits_the_stop_delay_while_the_command_keeps_working() {
    let Some((_turn, img)) = setup() else { return };
    use std::os::unix::fs::PermissionsExt;
    let dir = tempdir("docker-stop-delay-out");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let volume = format!("{}:/out", dir.display());
    let script = "trap 'echo term >> /out/term; exit 42' TERM; : > /out/ready; \
                  while :; do echo beat >> /out/beat; sleep 0.05; done";
    let c = Container::start(
        "stop-delay",
        &[
            "-v",
            &volume,
            "--entrypoint",
            "/reaper",
            &img.busybox,
            "-v",
            "--stop-delay",
            "1s",
            "--",
            "sh",
            "-c",
            script,
        ],
    );
    assert!(wait_for_file(&dir.join("ready"), Duration::from_secs(30)), "the workload never started");
    static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let beats = watch_growth(&dir.join("beat"), &STOP);
    let term = watch_growth(&dir.join("term"), &STOP);
    std::thread::sleep(Duration::from_millis(200));
    let t0 = Instant::now();
    let (code, _, err, took) = docker(&["stop", "-t", "5", &c.0], Duration::from_secs(30));
    STOP.store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(code, 0, "docker stop: {err}");
    let (beats, term) = (beats.join().unwrap(), term.join().unwrap());
    let logs = {
        let (_, out, err, _) = docker(&["logs", &c.0], Duration::from_secs(30));
        out + &err
    };
    assert_eq!(docker_ok(&["inspect", "-f", "{{.State.ExitCode}}", &c.0]), "42", "{logs}");
    assert!(logs.contains("TERM received: forwarding in 1s (--stop-delay)"), "{logs}");
    let term_at =
        term.first().unwrap_or_else(|| panic!("the TERM handler never ran: {logs}")).duration_since(t0);
    let during = beats.iter().filter(|&&b| b > t0 && b.duration_since(t0) < term_at).count();
    let last = beats.iter().filter(|&&b| b > t0).map(|b| b.duration_since(t0)).max().unwrap_or_default();
    println!(
        "figure: docker stop -t 5 with --stop-delay 1s: TERM handler ran at {:.3} s, last heartbeat at {:.3} s \
         ({during} heartbeats meanwhile), docker stop returned after {:.3} s",
        term_at.as_secs_f64(),
        last.as_secs_f64(),
        took.as_secs_f64()
    );
    assert!(term_at >= Duration::from_secs(1), "TERM reached the command {term_at:?} after docker stop");
    assert!(during >= 5, "only {during} heartbeats after docker stop: the command stopped working");
    assert!(last >= Duration::from_millis(500), "the heartbeat stopped {last:?} after docker stop");
    assert!(took >= Duration::from_secs(1) && took < Duration::from_secs(5), "docker stop took {took:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn docker_exec_reaper_sleep_works_in_a_scratch_image() {
    let Some((_turn, img)) = setup() else { return };
    // Nothing in the image but /reaper: PID 1 is reaper, its command `reaper --sleep`.
    let c = Container::start("exec-sleep", &[&img.scratch, "/reaper", "--sleep", "1h"]);
    let (code, out, err, took) = docker(&["exec", &c.0, "/reaper", "--sleep", "1"], Duration::from_secs(30));
    println!("figure: docker exec C /reaper --sleep 1: {:.3} s", took.as_secs_f64());
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""), "docker exec /reaper --sleep 1");
    assert!(took >= Duration::from_secs(1) && took < Duration::from_secs(5), "took {took:?}");
    // A usage error is reported as one, from inside the container.
    let (code, _, err, _) =
        docker(&["exec", &c.0, "/reaper", "--sleep", "1", "true"], Duration::from_secs(30));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--sleep takes no COMMAND"), "{err}");
    // `docker stop` TERMs PID 1, which forwards it: the command's sleep ends at once with 0.
    let (code, _, err, took) = docker(&["stop", "-t", "10", &c.0], Duration::from_secs(30));
    assert_eq!(code, 0, "{err}");
    assert_eq!(docker_ok(&["inspect", "-f", "{{.State.ExitCode}}", &c.0]), "0");
    assert!(took < Duration::from_secs(5), "docker stop took {took:?}");
}
