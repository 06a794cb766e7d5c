//! `--user` end to end on the machine's Docker Engine: a FROM-scratch image with no USER and
//! nothing but reaper, busybox, /etc/passwd and /etc/group, the Dockerfile pattern that
//! replaces `tini -- gosu app`. Prints "skipped: no Docker engine" where none answers.

mod common;

use std::time::Duration;

use common::docker::*;
use common::tempdir;

#[test]
fn scratch_image_runs_the_command_as_a_user_from_its_etc_passwd() {
    let Some((_serial, img)) = setup() else {
        return;
    };
    let ctx = tempdir("docker-user");
    std::fs::write(ctx.join("passwd"), "root:x:0:0:root:/root:/bin/sh\napp:x:1234:2345::/home/app:/bin/sh\n")
        .unwrap();
    std::fs::write(ctx.join("group"), "root:x:0:\napp:x:2345:\nweb:x:3000:other,app\naudio:x:3001:app\n")
        .unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            r#"FROM scratch
COPY --from={test} /reaper /reaper
COPY --from={test} /bin/busybox /bin/busybox
COPY passwd group /etc/
ENTRYPOINT ["/reaper", "--user", "app", "--"]
CMD ["/bin/busybox", "sh", "-c", "/bin/busybox id; echo HOME=$HOME USER=$USER"]
"#,
            test = img.test
        ),
    )
    .unwrap();
    let image = format!("reaper-e2e-user:{}", std::process::id());
    let label = label();
    let built = run(
        docker(["build", "--label", &label, "-t", &image, "."]).current_dir(&ctx),
        Duration::from_secs(300),
    );
    let _ = std::fs::remove_dir_all(&ctx);
    assert_eq!(built.code, 0, "{built:?}");
    let c = Container::new("user");
    let out = c.run(&[&image], Duration::from_secs(60));
    let _ = try_run(&mut docker(["rmi", "-f", &image]), Duration::from_secs(60));
    assert_eq!(out.code, 0, "{out:?}");
    // Docker sets HOME=/root (root's home in this passwd): reaper gives the user its own.
    assert_eq!(
        out.stdout,
        "uid=1234(app) gid=2345(app) groups=2345(app),3000(web),3001(audio)\nHOME=/home/app USER=app\n",
        "{out:?}"
    );
}
