//! Several processes end to end on the machine's Docker Engine: a FROM-scratch image running
//! two busybox services under one reaper (`httpd` beside a shell loop, `--also`). Prints
//! "skipped: no Docker engine" where none answers.

mod common;

use std::time::Duration;

use common::docker::*;

/// `/reaper --also "httpd -f -p 8080" -- sh -c LOOP` in the busybox image, started and ready.
fn two_services(what: &str, img: &Images) -> Container {
    let c = Container::new(what);
    c.start(&[
        "--entrypoint",
        "/reaper",
        &img.test,
        "-v",
        "--also",
        "httpd -f -p 8080",
        "--",
        "sh",
        "-c",
        r#"trap 'exit 0' TERM; echo READY; sleep 1000 & wait"#,
    ]);
    c.wait_for_log("READY", Duration::from_secs(30));
    let httpd = run(&mut docker(["exec", &c.name, "pidof", "httpd"]), Duration::from_secs(30));
    assert_eq!(httpd.code, 0, "httpd is not running: {httpd:?}; logs {}", c.logs());
    c
}

#[test]
fn docker_stop_stops_both_services_cleanly_and_fast() {
    let Some((_serial, img)) = setup() else {
        return;
    };
    let c = two_services("several-stop", img);
    let out = run(&mut docker(["stop", "-t", "10", &c.name]), Duration::from_secs(30));
    assert_eq!(out.code, 0, "{out:?}");
    println!("figure: docker stop of httpd + a shell under one reaper: {}", secs(out.elapsed));
    // Well under Docker's own 10 s: both handle TERM at once.
    assert!(out.elapsed < Duration::from_secs(5), "docker stop took {:?}", out.elapsed);
    // A stop from outside: the main command's status (its trap exits 0).
    assert_eq!(c.wait(Duration::from_secs(10)), 0, "{}", c.logs());
}

#[test]
fn killing_one_service_stops_the_container_with_its_status() {
    let Some((_serial, img)) = setup() else {
        return;
    };
    let c = two_services("several-kill", img);
    let out =
        run(&mut docker(["exec", &c.name, "sh", "-c", "kill -TERM $(pidof httpd)"]), Duration::from_secs(30));
    assert_eq!(out.code, 0, "{out:?}");
    // httpd died of TERM first: 128+15, and the shell was stopped.
    assert_eq!(c.wait(Duration::from_secs(30)), 143, "{}", c.logs());
    let logs = c.logs();
    assert!(logs.contains("httpd (pid ") && logs.contains("stopping sh (pid "), "{logs}");
}
