//! Several processes end to end on the machine's Docker Engine: a FROM-scratch image running
//! busybox services under one reaper (`httpd` beside a shell loop, `--also`; a prerequisite
//! that says when it is ready, a server after it and a helper). Prints
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

/// The README's three services under one reaper in a FROM-scratch image: a database-like
/// prerequisite (a busybox script that becomes ready after 1 s, s6-style on fd 3), a server
/// that starts only once it is ready, and a respawned helper. `docker stop` stops them all,
/// the server before its prerequisite.
#[test]
fn prerequisite_ready_first_server_after_and_docker_stop_stops_all_in_reverse_order() {
    let Some((_serial, img)) = setup() else {
        return;
    };
    let c = Container::new("several-order");
    c.start(&[
        "--entrypoint",
        "/reaper",
        &img.test,
        "-v",
        "--also",
        // Ready after 1 s; on TERM it says whether the server was still there.
        r#"--name=db --ready=fd:3 sh -c 'trap "pidof httpd >/dev/null && echo DB-STOPPED-BEFORE-WEB || echo DB-STOPPED-AFTER-WEB; exit 0" TERM; sleep 1; touch /tmp/db-ready; echo DB-READY; echo >&3; sleep 1000 & wait'"#,
        "--respawn",
        "--name=tick sh -c 'echo TICK; exec sleep 1000'",
        "--name=web",
        "--after=db",
        "--",
        "sh",
        "-c",
        "test -e /tmp/db-ready && echo WEB-AFTER-DB; exec httpd -f -p 8080",
    ]);
    c.wait_for_log("WEB-AFTER-DB", Duration::from_secs(30));
    let logs = c.logs();
    assert!(logs.find("DB-READY") < logs.find("WEB-AFTER-DB"), "{logs}");
    assert!(logs.contains("TICK"), "{logs}");
    let out = run(&mut docker(["stop", "-t", "10", &c.name]), Duration::from_secs(30));
    assert_eq!(out.code, 0, "{out:?}");
    println!("figure: docker stop of db + web + a helper under one reaper: {}", secs(out.elapsed));
    assert!(out.elapsed < Duration::from_secs(5), "docker stop took {:?}", out.elapsed);
    // A stop from outside: the main command's status; httpd dies of the TERM.
    assert_eq!(c.wait(Duration::from_secs(10)), 143, "{}", c.logs());
    let logs = c.logs();
    assert!(logs.contains("DB-STOPPED-AFTER-WEB"), "{logs}");
}
