//! The pod manifests in deploy/kubernetes/ run, not only parsed (tests/manifests.rs does that):
//! each one under `podman kube play`, with podman's root, run root and tmpdir private to the
//! test, and images built here FROM scratch (Debian's static busybox, reaper's static binary,
//! stand-in workloads) under the names the manifest uses, moved to `localhost/` with
//! `imagePullPolicy: Never`, so nothing is pulled. For each manifest: the pods start (one per
//! replica), reaper is PID 1 of each container as the manifest says (or a subreaper under the
//! sandbox with `shareProcessNamespace`), with the manifest's command line, user and
//! environment, the workload runs, `podman stop` of one container takes reaper's TERM path
//! (held for `--stop-delay`, exit 143), and `podman kube down` ends it all: no container, pod,
//! process or cgroup process of the test left. The copies also drop `ports` (podman 4.3
//! publishes a containerPort on the host; Kubernetes does not) and play with `--network none`.
//!
//! What podman 4.3 does not do is said, not faked: lifecycle hooks, the grace period, readiness
//! probes, native sidecars and a graceful kube down print `skipped: FILE: …` lines naming the
//! check and why. The other files there (containerd-sandbox.toml, crio-pause.conf) configure a
//! runtime, not a pod.

mod common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::docker::{root, secs};
use common::{ProcId, ns_pid, proc_id, remove_tree, skip, tempdir, wait_until};
use yaml_rust2::{Yaml, YamlEmitter, YamlLoader};

const BUSYBOX: &str = "/bin/busybox";
/// The placeholder registry of the manifests; images are built under `localhost/` instead.
const REGISTRY: &str = "registry.example.com/";
/// Every pod manifest, each played by a test below.
const PLAYED: &[&str] = &[
    "entrypoint-deployment.yaml",
    "native-sidecar.yaml",
    "prestop-sleep-deployment.yaml",
    "probe-deployment.yaml",
    "shared-process-namespace.yaml",
    "stop-delay-deployment.yaml",
];
const T: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    #[allow(dead_code)] // shown through Debug when a command fails
    stderr: String,
}

fn try_run(cmd: &mut Command, timeout: Duration) -> Option<Out> {
    cmd.stdin(Stdio::null()).process_group(0);
    let (code, stdout, stderr) = common::run_captured(cmd, timeout)?;
    Some(Out { code, stdout: String::from_utf8_lossy(&stdout).into_owned(), stderr })
}

fn run(cmd: &mut Command, timeout: Duration) -> Out {
    try_run(cmd, timeout).unwrap_or_else(|| panic!("{cmd:?} did not finish within {timeout:?}"))
}

fn ok(cmd: &mut Command, timeout: Duration) -> String {
    let out = run(cmd, timeout);
    assert_eq!(out.code, 0, "{cmd:?} failed: {out:?}");
    out.stdout.trim().to_owned()
}

// --- the manifests, rewritten for a machine without a registry -----------------------------

/// One container of a manifest, as the test checks it.
#[derive(Debug, Clone)]
struct Ctr {
    name: String,
    argv: Vec<String>,
    env: Vec<(String, String)>,
    pre_stop: Option<Vec<String>>,
    readiness_probe: bool,
    native_sidecar: bool,
}

/// What a manifest asks for, and the copy podman plays.
#[derive(Debug)]
struct Plan {
    file: &'static str,
    /// Pods podman creates: `NAME` for a Pod, `NAME-pod-I` per replica for a Deployment.
    pods: Vec<String>,
    containers: Vec<Ctr>,
    init_containers: Vec<Ctr>,
    grace: i64,
    run_as_user: Option<i64>,
    share_pid: bool,
    /// `localhost/…` images the copy names.
    images: Vec<String>,
    /// The copy, as YAML text.
    yaml: String,
}

fn strings(y: &Yaml) -> Vec<String> {
    y.as_vec().map(|v| v.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect()).unwrap_or_default()
}

/// The container as the test checks it; its image moved to `localhost/`, never pulled; its
/// `ports` dropped: podman 4.3 publishes a containerPort on the host (Kubernetes does not),
/// which would bind the machine's port 8080 and clash between replicas.
fn rewrite_container(c: &mut Yaml, images: &mut Vec<String>) -> Ctr {
    let name = c["name"].as_str().expect("container name").to_owned();
    let image = c["image"].as_str().expect("image");
    let local = format!("localhost/{}", image.strip_prefix(REGISTRY).expect("a registry.example.com image"));
    let argv = [strings(&c["command"]), strings(&c["args"])].concat();
    let env = c["env"]
        .as_vec()
        .map(|v| {
            v.iter()
                .filter_map(|e| Some((e["name"].as_str()?.to_owned(), e["value"].as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    let pre_stop = c["lifecycle"]["preStop"]["exec"]["command"]
        .as_vec()
        .map(|_| strings(&c["lifecycle"]["preStop"]["exec"]["command"]));
    let native_sidecar = c["restartPolicy"].as_str() == Some("Always");
    let readiness_probe = !c["readinessProbe"].is_badvalue();
    let h = c.as_mut_hash().expect("container map");
    h.insert(Yaml::from_str("image"), Yaml::String(local.clone()));
    h.insert(Yaml::from_str("imagePullPolicy"), Yaml::from_str("Never"));
    h.remove(&Yaml::from_str("ports"));
    if !images.contains(&local) {
        images.push(local);
    }
    Ctr { name, argv, env, pre_stop, readiness_probe, native_sidecar }
}

fn plan(file: &'static str) -> Plan {
    let text = std::fs::read_to_string(root().join("deploy/kubernetes").join(file)).expect(file);
    let doc = YamlLoader::load_from_str(&text).expect("YAML").remove(0);
    let kind = doc["kind"].as_str().expect("kind").to_owned();
    let name = doc["metadata"]["name"].as_str().expect("name").to_owned();
    let (pods, mut pod) = match kind.as_str() {
        "Pod" => (vec![name.clone()], doc.clone()),
        "Deployment" => {
            let n = doc["spec"]["replicas"].as_i64().unwrap_or(1);
            ((0..n).map(|i| format!("{name}-pod-{i}")).collect(), doc.clone())
        }
        // podman 4.3 plays Pods and Deployments only: a Job's pod template, as a bare Pod.
        "Job" => {
            println!("note: {file}: podman 4.3 has no Job kind: the Job's pod template is played as a Pod");
            let mut p = YamlLoader::load_from_str("apiVersion: v1\nkind: Pod\nmetadata: {}\n")
                .expect("YAML")
                .remove(0);
            p["metadata"] = doc["metadata"].clone();
            let h = p.as_mut_hash().expect("map");
            h.insert(Yaml::from_str("spec"), doc["spec"]["template"]["spec"].clone());
            (vec![name.clone()], p)
        }
        other => panic!("{file}: kind {other} is not a pod manifest"),
    };
    let spec = if kind == "Deployment" { &mut pod["spec"]["template"]["spec"] } else { &mut pod["spec"] };
    let grace = spec["terminationGracePeriodSeconds"].as_i64().unwrap_or(30);
    let run_as_user = spec["securityContext"]["runAsUser"].as_i64();
    let share_pid = spec["shareProcessNamespace"].as_bool() == Some(true);
    let mut images = Vec::new();
    let containers = spec["containers"]
        .as_mut_vec()
        .expect("containers")
        .iter_mut()
        .map(|c| rewrite_container(c, &mut images))
        .collect();
    let init_containers = match spec.as_mut_hash().and_then(|h| h.get_mut(&Yaml::from_str("initContainers")))
    {
        Some(Yaml::Array(v)) => v.iter_mut().map(|c| rewrite_container(c, &mut images)).collect(),
        _ => Vec::new(),
    };
    let mut yaml = String::new();
    YamlEmitter::new(&mut yaml).dump(&pod).expect("emit YAML");
    assert!(!yaml.contains(REGISTRY), "{file}: an image still names the placeholder registry:\n{yaml}");
    Plan { file, pods, containers, init_containers, grace, run_as_user, share_pid, images, yaml }
}

// --- a private podman ----------------------------------------------------------------------

/// podman with a root, run root and tmpdir of its own. Dropped on every path: its pods and
/// containers removed, any process naming its directory killed, its mounts undone, the
/// directory (images and all) removed.
struct Podman {
    dir: PathBuf,
    conf: PathBuf,
    /// A `podman kube play` still running (native sidecar), killed by its group if so.
    play: Option<Child>,
}

impl Podman {
    fn start(infra_image: Option<&str>) -> Result<Podman, String> {
        let dir = tempdir("kube-play");
        let p = Podman { conf: dir.join("containers.conf"), dir, play: None };
        let hard = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .map_err(|e| e.to_string())?
            .1;
        // As tests/engines.rs found on this machine kind: podman's default ulimits exceed the
        // hard limit, crun fails on a hybrid cgroup layout, there are no network plugins.
        let mut conf = format!(
            "[containers]\ndefault_ulimits = [\"nofile={hard}:{hard}\", \"nproc=32768:32768\"]\nnetns = \"none\"\n\
             [engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\nruntime = \"runc\"\n"
        );
        if let Some(image) = infra_image {
            conf.push_str(&format!("infra_image = \"{image}\"\n"));
        }
        std::fs::write(&p.conf, conf).map_err(|e| e.to_string())?;
        let out = try_run(&mut p.podman(["info", "--format", "{{.Host.OCIRuntime.Name}}"]), T);
        match out {
            Some(o) if o.code == 0 && o.stdout.trim() == "runc" => Ok(p),
            other => Err(format!("podman cannot start here: {other:?}")),
        }
    }

    fn podman<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(&self, args: I) -> Command {
        let mut cmd = Command::new("podman");
        let d = |n: &str| self.dir.join(n);
        cmd.arg("--root").arg(d("root")).arg("--runroot").arg(d("runroot")).arg("--tmpdir").arg(d("tmp"));
        cmd.args(["--storage-driver", "overlay"]).env("CONTAINERS_CONF", &self.conf);
        cmd.args(args);
        cmd
    }

    /// Builds the workload image and tags it with every name in `images`. One image FROM
    /// scratch: busybox, reaper as /reaper, and stand-ins for the manifests' programs.
    fn build(&self, reaper: &Path, images: &[String]) {
        let ctx = self.dir.join("context");
        let bin = ctx.join("bin");
        std::fs::create_dir_all(&bin).expect("context");
        std::fs::create_dir_all(ctx.join("www")).expect("context");
        std::fs::copy(BUSYBOX, ctx.join("busybox"))
            .unwrap_or_else(|e| panic!("{BUSYBOX}: {e} (install Debian's busybox-static, as .ci/run does)"));
        std::fs::copy(reaper, ctx.join("reaper")).expect("reaper");
        std::fs::write(ctx.join("www/healthz"), "ok\n").expect("healthz");
        // web-server --port N: busybox httpd in the foreground, serving /www.
        let scripts = [
            ("web-server", "#!/bin/sh\nexec httpd -f -p \"$2\" -h /www\n"),
            (
                "log-shipper",
                "#!/bin/sh\ntrap 'echo flushed; exit 0' TERM\necho shipping\nwhile :; do sleep 1; done\n",
            ),
            ("make-report", "#!/bin/sh\necho \"report from $2\"\n"),
        ];
        for (name, text) in scripts {
            std::fs::write(bin.join(name), text).expect("script");
            let mode = std::os::unix::fs::PermissionsExt::from_mode(0o755);
            std::fs::set_permissions(bin.join(name), mode).expect("chmod");
        }
        std::fs::write(
            ctx.join("Dockerfile"),
            "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n\
             COPY reaper /reaper\nCOPY www /www\nCOPY bin /usr/local/bin\n",
        )
        .expect("Dockerfile");
        let start = Instant::now();
        let id = ok(self.podman(["build", "-q"]).arg(&ctx), Duration::from_secs(300));
        for image in images {
            ok(&mut self.podman(["tag", &id, image]), T);
        }
        println!("figure: workload image built and tagged in {}", secs(start.elapsed()));
    }

    /// The reaper sandbox image (ENTRYPOINT /reaper --pause, as the Dockerfile's pause target).
    fn build_pause(&self, reaper: &Path, image: &str) {
        let ctx = self.dir.join("pause-context");
        std::fs::create_dir_all(&ctx).expect("context");
        std::fs::copy(reaper, ctx.join("reaper")).expect("reaper");
        std::fs::write(
            ctx.join("Dockerfile"),
            "FROM scratch\nCOPY reaper /reaper\nUSER 65534:65534\nENTRYPOINT [\"/reaper\", \"--pause\"]\n",
        )
        .expect("Dockerfile");
        ok(self.podman(["build", "-q", "-t", image]).arg(&ctx), Duration::from_secs(300));
    }

    fn inspect(&self, ctr: &str, format: &str) -> String {
        ok(&mut self.podman(["inspect", "-f", format, ctr]), T)
    }

    /// Container names and exit codes podman recorded as `died` events.
    fn died(&self) -> Vec<(String, String)> {
        let out = ok(
            &mut self.podman([
                "events",
                "--stream=false",
                "--filter",
                "event=died",
                "--format",
                "{{.Name}} {{.ContainerExitCode}}",
            ]),
            T,
        );
        out.lines().filter_map(|l| l.split_once(' ')).map(|(n, c)| (n.to_owned(), c.to_owned())).collect()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        if let Some(child) = &mut self.play {
            if !matches!(child.try_wait(), Ok(Some(_))) {
                // SAFETY: kill(2) of the process group of the podman this test started.
                unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
                let _ = child.wait();
            }
        }
        let _ = try_run(&mut self.podman(["pod", "rm", "-f", "-a"]), T);
        let _ = try_run(&mut self.podman(["rm", "-f", "-a"]), T);
        // conmon names the run root on its command line.
        common::kill_processes_using(&self.dir);
        remove_tree(&self.dir);
    }
}

/// The cgroup directories of `pid`, one per hierarchy, from /proc/PID/cgroup and where each
/// hierarchy is mounted.
fn cgroup_dirs(pid: i32) -> Vec<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let mut dirs = Vec::new();
    for line in own.lines() {
        let mut f = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (f.next(), f.next(), f.next()) else { continue };
        for m in mounts.lines() {
            let Some((left, right)) = m.split_once(" - ") else { continue };
            let l: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            let (Some(&mroot), Some(&point), Some(&fstype)) = (l.get(3), l.get(4), r.first()) else {
                continue;
            };
            let opts: Vec<&str> = r.get(2).map(|o| o.split(',').collect()).unwrap_or_default();
            let matches = match fstype {
                "cgroup2" => ctrls.is_empty(),
                "cgroup" => !ctrls.is_empty() && ctrls.split(',').all(|c| opts.contains(&c)),
                _ => false,
            };
            if let (true, Some(rel)) = (matches, path.strip_prefix(mroot)) {
                dirs.push(Path::new(point).join(rel.trim_start_matches('/')));
                break;
            }
        }
    }
    dirs
}

/// The processes in a cgroup directory; none when it is gone.
fn cgroup_procs(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .map(|s| s.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}

fn is_running(id: &ProcId) -> bool {
    proc_id(id.0).as_ref() == Some(id)
}

// --- the checks ----------------------------------------------------------------------------

/// Podman, the static reaper, and the manifest's images, or a visible skip.
fn setup(plan: &Plan, infra_image: Option<&str>) -> Option<(PathBuf, Podman)> {
    if !common::is_root() || common::which("podman").is_none() {
        skip(&format!("{}: no podman (needs root and podman, runc: scripts/install-deps)", plan.file));
        return None;
    }
    let reaper = common::static_binary().unwrap_or_else(|e| panic!("{e}"));
    let p = match Podman::start(infra_image) {
        Ok(p) => p,
        Err(e) => {
            skip(&format!("{}: {e}", plan.file));
            return None;
        }
    };
    p.build(&reaper, &plan.images);
    if let Some(image) = infra_image {
        p.build_pause(&reaper, image);
    }
    std::fs::write(p.dir.join(plan.file), &plan.yaml).expect("manifest copy");
    Some((reaper, p))
}

fn kube_play(p: &Podman, plan: &Plan) -> Command {
    let mut cmd = p.podman(["kube", "play", "--network", "none", "--log-driver", "k8s-file"]);
    cmd.arg(p.dir.join(plan.file));
    cmd
}

/// A running reaper container of the plan: PID 1 of its container (or, with a shared PID
/// namespace, not), running the manifest's command line from the static binary, as the
/// manifest's user, with its environment, and the workload under it. Returns its host pid.
fn check_reaper_container(p: &Podman, plan: &Plan, reaper: &[u8], pod: &str, c: &Ctr) -> i32 {
    let name = format!("{pod}-{}", c.name);
    assert_eq!(p.inspect(&name, "{{.State.Running}}"), "true", "{name} is not running");
    let pid: i32 = p.inspect(&name, "{{.State.Pid}}").parse().expect("pid");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("cmdline");
    let argv: Vec<String> =
        String::from_utf8_lossy(&cmdline).trim_end_matches('\0').split('\0').map(str::to_owned).collect();
    assert_eq!(argv, c.argv, "{}: {name}: the manifest's command and args", plan.file);
    let exe = std::fs::read(format!("/proc/{pid}/exe")).expect("exe");
    assert!(exe == reaper, "{}: {name}: the process is not the static reaper", plan.file);
    if let Some(uid) = plan.run_as_user {
        let uids = common::status_field(pid, "Uid").unwrap_or_default();
        assert!(uids.split_whitespace().all(|u| u == uid.to_string()), "{name}: Uid {uids}, want {uid}");
    }
    let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("environ");
    for (k, v) in &c.env {
        let want = format!("{k}={v}");
        assert!(
            environ.split(|&b| b == 0).any(|e| e == want.as_bytes()),
            "{name}: no {want} in its environment"
        );
    }

    // As the container sees it.
    let pid1 = ok(&mut p.podman(["exec", &name, "cat", "/proc/1/cmdline"]), T);
    let pid1: Vec<&str> = pid1.trim_end_matches('\0').split('\0').collect();
    if plan.share_pid {
        // The sandbox is PID 1 of the pod and reaps; reaper is a subreaper under it.
        assert_ne!(ns_pid(pid), Some(1), "{name}: reaper is PID 1 in a shared PID namespace");
        assert_eq!(pid1, ["/reaper", "--pause"], "{name}: PID 1 of the shared namespace");
    } else {
        assert_eq!(ns_pid(pid), Some(1), "{name}: reaper is not PID 1 of its container");
        assert_eq!(pid1, c.argv, "{name}: PID 1 as the container sees it");
    }

    // The workload, under reaper.
    let program = c.argv.iter().skip_while(|a| *a != "--").nth(1).cloned().unwrap_or_default();
    let child_named = |comm: &str| {
        wait_until(Duration::from_secs(10), || {
            common::children(pid).iter().any(|&k| common::comm(k).as_deref() == Some(comm))
        })
    };
    match program.as_str() {
        "/usr/local/bin/web-server" => {
            assert!(child_named("httpd"), "{name}: no httpd under reaper");
            let port = c.argv.iter().skip_while(|a| *a != "--port").nth(1).expect("--port");
            let url = format!("http://127.0.0.1:{port}/healthz");
            let mut last = None;
            let served = wait_until(Duration::from_secs(20), || {
                let out = try_run(&mut p.podman(["exec", &name, "wget", "-qO-", &url]), T);
                let done = out.as_ref().is_some_and(|o| o.code == 0 && o.stdout == "ok\n");
                last = out;
                done
            });
            assert!(served, "{name}: {url} did not answer: {last:?}");
        }
        "tail" => assert!(child_named("tail"), "{name}: no tail under reaper"),
        "/usr/local/bin/log-shipper" => {
            assert!(wait_until(Duration::from_secs(10), || !common::children(pid).is_empty()));
            let shipping = wait_until(Duration::from_secs(10), || {
                ok(&mut p.podman(["logs", &name]), T).contains("shipping")
            });
            assert!(shipping, "{name}: the log shipper did not start");
        }
        other => panic!("{}: no workload check for {other:?}", plan.file),
    }
    pid
}

/// Prints what podman 4.3 leaves out for this manifest: the preStop hooks and the grace period.
fn skip_what_podman_ignores(p: &Podman, plan: &Plan, pod: &str, c: &Ctr) {
    if let Some(hook) = &c.pre_stop {
        skip(&format!(
            "{}: {}: preStop hook {hook:?} before the TERM: podman 4.3 ignores lifecycle hooks",
            plan.file, c.name
        ));
    }
    let name = format!("{pod}-{}", c.name);
    if c.readiness_probe && p.inspect(&name, "{{.Config.Healthcheck}}") == "<nil>" {
        skip(&format!(
            "{}: {}: readinessProbe (the endpoint a --stop-delay waits out): podman 4.3 ignores \
             readiness probes (no healthcheck on the container)",
            plan.file, c.name
        ));
    }
    let timeout = p.inspect(&name, "{{.Config.StopTimeout}}");
    if timeout != plan.grace.to_string() {
        skip(&format!(
            "{}: {}: reaper's shutdown budget inside terminationGracePeriodSeconds {}: podman 4.3 \
             ignores it (the container's stop timeout is {timeout} s)",
            plan.file, c.name, plan.grace
        ));
    }
}

/// kube down SIGKILLs, so the TERM path is taken with `podman stop` on one container, as the
/// kubelet stops it: TERM, SIGKILL after the stop timeout (15 s here, so a late exit shows as
/// 137). reaper holds the TERM for the manifest's `--stop-delay`, forwards it, and exits with
/// the workload's death by TERM (143).
fn stop_one(p: &Podman, plan: &Plan, pod: &str, c: &Ctr) {
    let name = format!("{pod}-{}", c.name);
    let options = c.argv.iter().take_while(|a| *a != "--");
    let delay = options.skip_while(|a| *a != "--stop-delay").nth(1).map(|d| {
        let s = d.strip_suffix('s').expect("--stop-delay in seconds");
        Duration::from_secs(s.parse().expect("--stop-delay in seconds"))
    });
    let start = Instant::now();
    ok(&mut p.podman(["stop", "-t", "15", &name]), T);
    let took = start.elapsed();
    println!("figure: {}: podman stop of {name} in {}", plan.file, secs(took));
    assert_eq!(p.inspect(&name, "{{.State.ExitCode}}"), "143", "{}: {name}: TERM forwarded", plan.file);
    if let Some(delay) = delay {
        assert!(took >= delay, "{}: {name}: stopped in {took:?}, before --stop-delay {delay:?}", plan.file);
    }
}

/// What must be gone after `podman kube down`.
struct Leftovers {
    procs: Vec<ProcId>,
    cgroups: Vec<PathBuf>,
}

impl Leftovers {
    /// Every process of the pods (containers, infra, conmon) and their cgroups.
    fn record(p: &Podman) -> Leftovers {
        let ids = ok(&mut p.podman(["ps", "-a", "-q"]), T);
        let mut procs = Vec::new();
        let mut cgroups = Vec::new();
        for id in ids.split_whitespace() {
            for field in ["{{.State.Pid}}", "{{.State.ConmonPid}}"] {
                let pid: i32 = p.inspect(id, field).parse().unwrap_or(0);
                if pid <= 0 {
                    continue;
                }
                procs.extend(proc_id(pid));
                procs.extend(common::snapshot_descendants(pid));
                if field == "{{.State.Pid}}" {
                    cgroups.extend(cgroup_dirs(pid));
                }
            }
        }
        procs.sort();
        procs.dedup();
        cgroups.sort();
        cgroups.dedup();
        Leftovers { procs, cgroups }
    }

    fn assert_gone(&self, p: &Podman, file: &str) {
        let gone = wait_until(Duration::from_secs(10), || !self.procs.iter().any(is_running));
        let left: Vec<&ProcId> = self.procs.iter().filter(|id| is_running(id)).collect();
        assert!(gone, "{file}: processes left after kube down: {left:?}");
        for dir in &self.cgroups {
            assert_eq!(
                cgroup_procs(dir),
                Vec::<String>::new(),
                "{file}: processes left in {}",
                dir.display()
            );
        }
        assert_eq!(ok(&mut p.podman(["ps", "-a", "-q"]), T), "", "{file}: containers left");
        assert_eq!(ok(&mut p.podman(["pod", "ps", "-q"]), T), "", "{file}: pods left");
        let using = common::processes_using(&p.dir);
        assert!(using.is_empty(), "{file}: processes naming the podman root left: {using:?}");
    }
}

/// `podman kube down`, then nothing left; how the containers died is reported. `running`:
/// how many reaper containers still run (their processes and cgroups are recorded first).
fn kube_down(p: &Podman, plan: &Plan, running: usize) {
    let left = Leftovers::record(p);
    if running > 0 {
        assert!(left.procs.len() > running, "{}: recorded {:?}", plan.file, left.procs);
        assert!(!left.cgroups.is_empty(), "{}: no cgroup found", plan.file);
    }
    let start = Instant::now();
    let out = run(p.podman(["kube", "down"]).arg(p.dir.join(plan.file)), T);
    assert_eq!(out.code, 0, "{}: kube down: {out:?}", plan.file);
    println!("figure: {}: podman kube down in {}", plan.file, secs(start.elapsed()));
    left.assert_gone(p, plan.file);
    let died = p.died();
    println!("figure: {}: exit codes after kube down: {died:?}", plan.file);
    if died.iter().any(|(_, code)| code == "137") {
        skip(&format!(
            "{}: the TERM forwarded by reaper on kube down: podman 4.3's kube down SIGKILLs the \
             containers (exit 137); the TERM path is checked with podman stop on one container",
            plan.file
        ));
    }
}

/// Plays a manifest whose containers all run beside each other (no native sidecar).
fn play_and_down(file: &'static str, infra_image: Option<&str>) {
    let total = Instant::now();
    let plan = plan(file);
    let Some((reaper, p)) = setup(&plan, infra_image) else { return };
    let reaper = std::fs::read(&reaper).expect("reaper");
    let start = Instant::now();
    let out = run(&mut kube_play(&p, &plan), Duration::from_secs(120));
    assert_eq!(out.code, 0, "{file}: kube play: {out:?}");
    println!("figure: {file}: podman kube play in {}", secs(start.elapsed()));
    let pods: Vec<String> = {
        let mut v: Vec<String> =
            ok(&mut p.podman(["pod", "ps", "--format", "{{.Name}}"]), T).lines().map(str::to_owned).collect();
        v.sort();
        v
    };
    assert_eq!(pods, plan.pods, "{file}: one pod per replica");
    let mut n = 0;
    for pod in &plan.pods {
        for c in &plan.containers {
            check_reaper_container(&p, &plan, &reaper, pod, c);
            n += 1;
        }
    }
    for c in &plan.containers {
        skip_what_podman_ignores(&p, &plan, &plan.pods[0], c);
    }
    stop_one(&p, &plan, &plan.pods[0], &plan.containers[0]);
    kube_down(&p, &plan, n);
    drop(p);
    println!("figure: {file}: test in total {}", secs(total.elapsed()));
}

#[test]
fn every_pod_manifest_is_played() {
    let mut files: Vec<String> = std::fs::read_dir(root().join("deploy/kubernetes"))
        .expect("deploy/kubernetes")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".yaml") || f.ends_with(".yml"))
        .collect();
    files.sort();
    assert_eq!(files, PLAYED, "a manifest without a kube play test below");
    for f in PLAYED {
        let plan = plan(f);
        for c in plan.containers.iter().chain(&plan.init_containers) {
            assert_eq!(c.argv.first().map(String::as_str), Some("/reaper"), "{f}: {}", c.name);
        }
        let docs = YamlLoader::load_from_str(&plan.yaml).expect("the copy parses");
        assert_eq!(docs.len(), 1);
        assert!(!plan.yaml.contains("ports"), "{f}: ports left in the copy");
    }
}

#[test]
fn kube_play_entrypoint_deployment() {
    play_and_down("entrypoint-deployment.yaml", None);
}

#[test]
fn kube_play_stop_delay_deployment() {
    play_and_down("stop-delay-deployment.yaml", None);
}

#[test]
fn kube_play_probe_deployment() {
    play_and_down("probe-deployment.yaml", None);
}

#[test]
fn kube_play_prestop_sleep_deployment() {
    play_and_down("prestop-sleep-deployment.yaml", None);
}

/// The sandbox is reaper too (`reaper --pause`, the Dockerfile's pause target, as README's
/// sandbox section makes it): PID 1 of the shared namespace; reaper in each container a
/// subreaper under it.
#[test]
fn kube_play_shared_process_namespace() {
    let image = format!("localhost/reaper-pause-kube-{}:latest", std::process::id());
    play_and_down("shared-process-namespace.yaml", Some(&image));
}

/// podman 4.3 runs an init container to completion before the main containers, whatever its
/// restartPolicy: the sidecar runs alone, under reaper as PID 1, and the main container waits.
/// The test stops the sidecar (reaper forwards the TERM, the shipper flushes and exits 0), then
/// the main container runs its report to completion under reaper.
#[test]
fn kube_play_native_sidecar_job() {
    let total = Instant::now();
    let file = "native-sidecar.yaml";
    let plan = plan(file);
    let Some((reaper, mut p)) = setup(&plan, None) else { return };
    let reaper = std::fs::read(&reaper).expect("reaper");
    let [sidecar] = plan.init_containers.as_slice() else { panic!("{file}: one init container") };
    let [main] = plan.containers.as_slice() else { panic!("{file}: one container") };
    assert!(sidecar.native_sidecar, "{file}: {}: restartPolicy: Always", sidecar.name);
    let pod = &plan.pods[0];

    // kube play waits for the init container to exit: run it in the background.
    let mut play = kube_play(&p, &plan);
    play.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).process_group(0);
    p.play = Some(play.spawn().expect("podman kube play"));
    let side = format!("{pod}-{}", sidecar.name);
    let up = wait_until(Duration::from_secs(60), || {
        try_run(&mut p.podman(["inspect", "-f", "{{.State.Running}}", &side]), T)
            .is_some_and(|o| o.stdout.trim() == "true")
    });
    assert!(up, "{file}: the sidecar {side} did not start");
    check_reaper_container(&p, &plan, &reaper, pod, sidecar);
    let main_name = format!("{pod}-{}", main.name);
    let state = p.inspect(&main_name, "{{.State.Status}}");
    if state == "created" {
        skip(&format!(
            "{file}: {}: a native sidecar running beside {} and stopped after it: podman 4.3 \
             ignores restartPolicy: Always on init containers and runs them to completion first",
            sidecar.name, main.name
        ));
    }
    skip(&format!(
        "{file}: {}: reaper's shutdown budget inside terminationGracePeriodSeconds {}: podman 4.3 \
         ignores it (stop timeout {} s)",
        sidecar.name,
        plan.grace,
        p.inspect(&side, "{{.Config.StopTimeout}}")
    ));

    // The sidecar ends on TERM through reaper: flushed, exit 0, well inside podman's 10 s.
    let start = Instant::now();
    ok(&mut p.podman(["stop", "-t", "10", &side]), T);
    println!("figure: {file}: podman stop of the sidecar in {}", secs(start.elapsed()));
    let exit = wait_until(Duration::from_secs(10), || p.died().iter().any(|(n, _)| n == &side));
    assert!(exit, "{file}: no died event for {side}");
    let code = p.died().into_iter().find(|(n, _)| n == &side).map(|(_, c)| c);
    assert_eq!(
        code.as_deref(),
        Some("0"),
        "{file}: {side}: the shipper's TERM handler exits 0 through reaper"
    );

    // Then podman starts the main container: the report runs under reaper and exits 0.
    let child = p.play.as_mut().expect("play");
    let st = common::wait_child(child, Duration::from_secs(60)).expect("kube play did not finish");
    assert!(st.success(), "{file}: kube play: {st:?}");
    assert_eq!(p.inspect(&main_name, "{{.State.ExitCode}}"), "0", "{file}: {main_name}");
    let logs = ok(&mut p.podman(["logs", &main_name]), T);
    assert_eq!(logs, "report from /var/log/app", "{file}: {main_name}'s output");
    assert_eq!(p.inspect(&main_name, "{{.Path}}"), "/reaper", "{file}: {main_name} ran under reaper");

    kube_down(&p, &plan, 0);
    drop(p);
    println!("figure: {file}: test in total {}", secs(total.elapsed()));
}
