//! End-to-end tests against the real Docker Engine: reaper as PID 1 of real containers,
//! driven by the docker CLI the way users drive it. The images, containers and the skip when
//! no engine answers are in tests/common/docker.rs.
//!
//! Measured figures are printed as `figure: ...` lines (see them with `--nocapture`).

mod common;

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::docker::*;
use common::{adopted, orphan_storm, tempdir, wait_until, zombies_under};

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
    assert_eq!(out.stdout, reaper::options::VERSION);

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

/// `docker build -t reaper .` from a fresh clone (no target/static) with the classic builder,
/// which builds every stage up to the target: it must need no local binary, only the Rust
/// image. The machines that run this have no registry, and the test must not depend on one,
/// so the tag asked for does not exist: the build has to get as far as that pull and fail
/// there. Dockerfile.local's default and `pause` targets then build from the binary, with the
/// classic builder here and, where it is installed, with BuildKit.
#[test]
fn default_build_needs_no_local_binary_and_local_targets_build_from_one() {
    let Some((_serial, _img)) = setup() else {
        return;
    };
    let ctx = tempdir("clean-context");
    for f in ["Dockerfile", "Dockerfile.local", ".dockerignore", "Cargo.toml"] {
        std::fs::copy(root().join(f), ctx.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
    }
    // cargo-mutants output left in a checkout stays out of the context (.dockerignore).
    for d in ["mutants.out", "mutants.out.old"] {
        std::fs::create_dir(ctx.join(d)).expect("mkdir");
        std::fs::write(ctx.join(d).join("outcomes.json"), vec![b'x'; 4 << 20]).expect("write");
    }
    let label = format!("{LABEL}={}", std::process::id());
    let tag = format!("reaper-e2e-default-build:{}", std::process::id());
    let build = |buildkit: &str, args: &[&str]| {
        let mut c = docker(["build", "--label", &label, "-t", &tag]);
        c.args(args).arg(".").current_dir(&ctx).env("DOCKER_BUILDKIT", buildkit);
        run(&mut c, Duration::from_secs(300))
    };
    let no_such_rust = ["--build-arg", "RUST_VERSION=reaper-test-no-such-tag"];
    let buildkit = run(&mut docker(["buildx", "version"]), Duration::from_secs(30)).code == 0;
    if !buildkit {
        // Straight to stderr (the harness captures println!): visible in a plain run.
        let _ = writeln!(
            std::io::stderr(),
            "skipped: the BuildKit builds: docker buildx is not installed (the classic builder is tested)"
        );
    }
    let builders = if buildkit { &["0", "1"][..] } else { &["0"][..] };

    let out = build("0", &no_such_rust);
    let last_step = out.stdout.lines().rfind(|l| l.starts_with("Step ")).unwrap_or("");
    // The classic builder ends its progress line with carriage returns.
    let sent = out.stdout.lines().find(|l| l.starts_with("Sending build context")).unwrap_or("").trim_end();
    assert!(
        sent.ends_with("kB") || sent.ends_with("B") && !sent.ends_with("MB"),
        "{sent}: mutants.out* sent"
    );
    assert!(!out.stderr.contains("COPY failed"), "{out:?}");
    assert!(last_step.ends_with(" : FROM rust:${RUST_VERSION}-alpine AS build"), "{out:?}");
    assert_eq!(out.code, 1, "{out:?}");
    let why = out.stderr.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("");
    println!("figure: classic builder, default target, no local binary: stops at the pull: {why}");
    if buildkit {
        let out = build("1", &no_such_rust);
        assert_eq!(out.code, 1, "{out:?}");
        assert!(out.stderr.contains("rust:reaper-test-no-such-tag-alpine"), "{out:?}");
    }

    // Dockerfile.local's targets, from the binary at its usual place in the same context.
    let rel = build_static_binary().expect("static binary");
    let dest = ctx.join(&rel);
    std::fs::create_dir_all(dest.parent().expect("a parent")).expect("mkdir");
    std::fs::copy(root().join(&rel), &dest).expect("copy the binary");
    // And where scripts/build-static also puts it whatever the target (musl or glibc), which is
    // Dockerfile.local's default: the README's `docker build -f Dockerfile.local` and `podman
    // build -f Dockerfile.local` lines name no REAPER_BINARY.
    let fixed = "target/static/reaper";
    std::fs::copy(root().join(fixed), ctx.join(fixed))
        .expect("scripts/build-static wrote target/static/reaper");
    let arg = format!("REAPER_BINARY={rel}");
    for builder in builders {
        for (target, entrypoint, explicit) in [
            (None, r#"["/reaper","--"]"#, true),
            (Some("pause"), r#"["/reaper","--pause"]"#, true),
            (None, r#"["/reaper","--"]"#, false),
            (Some("pause"), r#"["/reaper","--pause"]"#, false),
        ] {
            let mut args = vec!["-f", "Dockerfile.local"];
            if explicit {
                args.extend(["--build-arg", &arg]);
            }
            args.extend(target.iter().flat_map(|t| ["--target", t]));
            let out = build(builder, &args);
            assert_eq!(out.code, 0, "DOCKER_BUILDKIT={builder} {args:?}: {out:?}");
            let f = "{{json .Config.Entrypoint}}";
            let inspect = docker_ok(&["image", "inspect", "-f", f, &tag], Duration::from_secs(30));
            assert_eq!(inspect, entrypoint, "DOCKER_BUILDKIT={builder} {args:?}");
        }
    }
    let _ = run(&mut docker(["rmi", "-f", &tag]), Duration::from_secs(60));
    let _ = std::fs::remove_dir_all(&ctx);
}
