//! The README's health check end to end: a FROM-scratch image (the busybox test image of
//! tests/common/docker.rs: /reaper plus a static busybox) with `HEALTHCHECK CMD ["/reaper",
//! "--probe", "http://127.0.0.1:8080/"]`, serving with busybox httpd under reaper, on
//! `--network none` (loopback only). The container turns healthy, then unhealthy once httpd is
//! stopped, and Docker's health log holds the probe's line. Prints "skipped: no Docker engine"
//! without one.

mod common;

use std::time::Duration;

use common::docker::*;
use common::{tempdir, wait_until};

const T: Duration = Duration::from_secs(60);

#[test]
fn an_http_probe_healthcheck_turns_healthy_then_unhealthy_when_the_server_stops() {
    let Some((_serial, img)) = setup() else {
        return;
    };
    let ctx = tempdir("probe-healthcheck");
    let image = format!("{}-probe", img.test);
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM {}\nHEALTHCHECK --interval=1s --timeout=10s --retries=1 \
             CMD [\"/reaper\", \"--probe\", \"http://127.0.0.1:8080/\"]\n",
            img.test
        ),
    )
    .expect("Dockerfile");
    let built = run(docker(["build", "--label", &label(), "-t", &image, "."]).current_dir(&ctx), T);
    let _ = std::fs::remove_dir_all(&ctx);
    assert_eq!(built.code, 0, "{built:?}");
    let _image = Image(image.clone());

    // httpd in the background of the main command, which stays: stopping httpd must leave the
    // container running, unhealthy.
    let c = Container::new("probe-health");
    let workload = "mkdir -p /tmp/www && echo up > /tmp/www/index.html && \
                    { httpd -f -p 127.0.0.1:8080 -h /tmp/www & echo $! > /tmp/httpd.pid; } && \
                    exec sleep 100000";
    c.start(&["--network", "none", &image, "sh", "-c", workload]);
    let status = || docker_ok(&["inspect", "-f", "{{.State.Health.Status}}", &c.name], T);
    let log = || docker_ok(&["inspect", "-f", "{{range .State.Health.Log}}{{.Output}}{{end}}", &c.name], T);
    let mut last = String::new();
    assert!(
        wait_until(T, || {
            last = status();
            last == "healthy"
        }),
        "never healthy: {last}: {}",
        log()
    );
    let healthy = log();
    assert!(healthy.contains("healthy: http://127.0.0.1:8080/ ok (HTTP/1."), "{healthy}");

    docker_ok(&["exec", &c.name, "sh", "-c", "kill $(cat /tmp/httpd.pid)"], T);
    assert!(
        wait_until(T, || {
            last = status();
            last == "unhealthy"
        }),
        "never unhealthy: {last}: {}",
        log()
    );
    let unhealthy = log();
    assert!(
        unhealthy.contains("unhealthy: http://127.0.0.1:8080/ failed (Connection refused)"),
        "{unhealthy}"
    );
    assert!(c.running(), "stopping httpd must not stop the container");
    println!("docker health log: {unhealthy}");
}

/// Removes an image when dropped.
struct Image(String);

impl Drop for Image {
    fn drop(&mut self) {
        let _ = try_run(&mut docker(["rmi", "-f", &self.0]), Duration::from_secs(60));
    }
}
