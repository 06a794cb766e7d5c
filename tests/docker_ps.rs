//! `docker exec C /reaper --ps` in FROM-scratch containers (the busybox test image of
//! tests/common/docker.rs, which has /reaper): one whose PID 1 is a shell script with a leaky
//! worker, one whose PID 1 is reaper, and a HEALTHCHECK on `--max-zombies` that turns the
//! container unhealthy when its workload leaks. Prints "skipped: no Docker engine" without one.

mod common;

use std::time::Duration;

use common::docker::*;
use common::{NOT_AN_INIT, Row, row, rows, tempdir, wait_until};

const T: Duration = Duration::from_secs(60);

/// A worker whose parent never waits: `sleep 0` twice in the background, then the shell
/// becomes `sleep 1000` (exec), which never calls wait(): two zombies.
const LEAKY_WORKER: &str = "sleep 0 & sleep 0 & exec sleep 1000";

/// `docker exec C /reaper --ps ARGS`.
fn ps(c: &Container, args: &[&str]) -> Out {
    let mut argv = vec!["exec", c.name.as_str(), "/reaper", "--ps"];
    argv.extend_from_slice(args);
    run(&mut docker(&argv), T)
}

fn zombies<'a>(rows: &[Row<'a>]) -> Vec<&'a str> {
    rows.iter().filter(|r| r.state == "Z").map(|r| r.text).collect()
}

#[test]
fn a_shell_script_as_pid1_is_no_init_and_the_leak_is_named() {
    let Some((_serial, img)) = setup() else {
        return;
    };
    let c = Container::new("ps-shell");
    // PID 1 is busybox sh running a script; its worker leaks two zombies.
    let script = format!("sh -c '{LEAKY_WORKER}' & trap 'exit 0' TERM; while :; do sleep 1; done");
    c.start(&["--entrypoint", "/bin/sh", &img.test, "-c", &script]);
    let mut out = ps(&c, &[]);
    assert!(
        wait_until(T, || {
            out = ps(&c, &[]);
            zombies(&rows(&out.stdout)).len() == 2
        }),
        "{out:?}"
    );
    assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{out:?}");
    let listing = &out.stdout;
    let all = rows(listing);
    let worker = all.iter().find(|r| r.text == "sleep 1000").unwrap_or_else(|| panic!("{listing}"));
    let note = format!("[sleep]  zombie: parent {} (sleep) has not called wait()", worker.pid);
    assert_eq!(zombies(&all), [note.as_str(), note.as_str()], "{listing}");
    assert!(all.iter().filter(|r| r.state == "Z").all(|r| r.ppid == worker.pid && r.uid == "65534"));
    let (_, pid1) = row(listing, 1);
    assert!(pid1.text.starts_with("/bin/sh -c sh -c"), "{listing}");
    assert!(listing.contains("processes, 2 zombies\n"), "{listing}");
    assert!(listing.ends_with(&format!("\nPID 1 is sh, {NOT_AN_INIT}\n")), "{listing}");
    let over = ps(&c, &["--max-zombies", "1"]);
    assert_eq!((over.code, over.stderr.as_str()), (1, "reaper: 2 zombies, more than --max-zombies 1\n"));
    println!("figure: docker exec reaper --ps: {:.3} s", over.elapsed.as_secs_f64());
}

#[test]
fn reaper_as_pid1_is_recognised_and_has_adopted_the_orphan() {
    let Some((_serial, img)) = setup() else {
        return;
    };
    let c = Container::new("ps-reaper");
    // The inner shell starts `sleep 1001` and exits: reaper (PID 1) adopts it.
    c.start(&[&img.test, "sh", "-c", "sh -c 'sleep 1001 &'; exec sleep 1000"]);
    let mut out = ps(&c, &[]);
    assert!(
        wait_until(T, || {
            out = ps(&c, &[]);
            rows(&out.stdout).iter().any(|r| r.text == "sleep 1001") && out.stdout.contains(" 0 zombies\n")
        }),
        "{out:?}"
    );
    let listing = &out.stdout;
    let (_, pid1) = row(listing, 1);
    assert_eq!((pid1.ppid, pid1.depth), (0, 0), "{listing}");
    // 80 columns: the end of the command line is cut.
    assert!(pid1.text.starts_with("/reaper -- sh -c sh -c 'sleep 1001 &'"), "{listing}");
    let orphan = rows(listing).into_iter().find(|r| r.text == "sleep 1001").expect("orphan");
    assert_eq!((orphan.ppid, orphan.depth), (1, 1), "{listing}");
    assert!(listing.ends_with("\nPID 1 is reaper: it reaps orphans.\n"), "{listing}");
    assert_eq!(ps(&c, &["--max-zombies", "0"]).code, 0);
}

#[test]
fn a_max_zombies_healthcheck_turns_the_container_unhealthy_when_the_workload_leaks() {
    let Some((_serial, img)) = setup() else {
        return;
    };
    // The README's HEALTHCHECK, with a short interval.
    let ctx = tempdir("healthcheck");
    let image = format!("{}-health", img.test);
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM {}\nHEALTHCHECK --interval=1s --timeout=10s --retries=1 \
             CMD [\"/reaper\", \"--ps\", \"--max-zombies\", \"0\"]\n",
            img.test
        ),
    )
    .expect("Dockerfile");
    let label = format!("{LABEL}={}", std::process::id());
    let built = run(docker(["build", "--label", &label, "-t", &image, "."]).current_dir(&ctx), T);
    let _ = std::fs::remove_dir_all(&ctx);
    assert_eq!(built.code, 0, "{built:?}");
    let _image = Image(image.clone());

    // Healthy until the test creates /tmp/leak; then the worker leaks (reaper cannot reap
    // children of a live parent that never waits).
    let c = Container::new("health");
    let workload = format!("while [ ! -e /tmp/leak ]; do sleep 0.1; done; {LEAKY_WORKER}");
    c.start(&[&image, "sh", "-c", &workload]);
    let status = || docker_ok(&["inspect", "-f", "{{.State.Health.Status}}", &c.name], T);
    let mut last = String::new();
    assert!(
        wait_until(T, || {
            last = status();
            last == "healthy"
        }),
        "never healthy: {last}"
    );
    docker_ok(&["exec", &c.name, "touch", "/tmp/leak"], T);
    assert!(
        wait_until(T, || {
            last = status();
            last == "unhealthy"
        }),
        "never unhealthy: {last}"
    );
    let log = docker_ok(&["inspect", "-f", "{{range .State.Health.Log}}{{.Output}}{{end}}", &c.name], T);
    assert!(log.contains("reaper: 2 zombies, more than --max-zombies 0"), "{log}");
}

/// Removes an image when dropped.
struct Image(String);

impl Drop for Image {
    fn drop(&mut self) {
        let _ = try_run(&mut docker(["rmi", "-f", &self.0]), Duration::from_secs(60));
    }
}
