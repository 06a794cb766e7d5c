//! The Kubernetes examples in deploy/kubernetes/ and the Dockerfile's entrypoints: every YAML
//! manifest parses, has the structure its kind needs, uses only known pod and container fields
//! (so a misspelt field fails here, not in a user's cluster), and every reaper command line in
//! them is one reaper accepts, with its shutdown budget inside the grace period: a preStop
//! `reaper --sleep` + `--stop-delay` + `--kill-after` + `--drain` < terminationGracePeriodSeconds.
//! An exec probe that runs `/reaper` must be a valid `reaper --probe` whose `--timeout` ends
//! before the kubelet's `timeoutSeconds` (1 s by default).

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::time::Duration;

use reaper::options::{self, Parsed};
use yaml_rust2::{Yaml, YamlLoader};

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes")
}

const POD_SPEC_FIELDS: &[&str] = &[
    "activeDeadlineSeconds",
    "affinity",
    "automountServiceAccountToken",
    "containers",
    "dnsConfig",
    "dnsPolicy",
    "enableServiceLinks",
    "hostIPC",
    "hostNetwork",
    "hostPID",
    "hostUsers",
    "hostname",
    "imagePullSecrets",
    "initContainers",
    "nodeName",
    "nodeSelector",
    "priorityClassName",
    "restartPolicy",
    "securityContext",
    "serviceAccountName",
    "shareProcessNamespace",
    "subdomain",
    "terminationGracePeriodSeconds",
    "tolerations",
    "topologySpreadConstraints",
    "volumes",
];

const CONTAINER_FIELDS: &[&str] = &[
    "args",
    "command",
    "env",
    "envFrom",
    "image",
    "imagePullPolicy",
    "lifecycle",
    "livenessProbe",
    "name",
    "ports",
    "readinessProbe",
    "resources",
    "restartPolicy",
    "securityContext",
    "startupProbe",
    "stdin",
    "tty",
    "volumeMounts",
    "workingDir",
];

/// What one checked manifest contained.
#[derive(Debug, Default)]
struct Summary {
    kind: String,
    /// (container name, is an init container with restartPolicy: Always, parsed options)
    reaper_containers: Vec<(String, bool, options::Options)>,
    share_process_namespace: bool,
    /// (container name, how long its preStop hook sleeps)
    pre_stop: Vec<(String, Duration)>,
    /// (container name, probe kind, the CHECKs, --max-zombies) of each `reaper --probe` probe.
    probes: Vec<(String, String, Vec<String>, Option<u64>)>,
}

const PROBE_FIELDS: &[&str] = &[
    "exec",
    "failureThreshold",
    "grpc",
    "httpGet",
    "initialDelaySeconds",
    "periodSeconds",
    "successThreshold",
    "tcpSocket",
    "terminationGracePeriodSeconds",
    "timeoutSeconds",
];

/// The CHECKs of a `reaper --probe` and its `--max-zombies`.
type ReaperProbe = (Vec<String>, Option<u64>);

/// A container's probe: its fields are known, it has one handler, and when that handler is an
/// exec of `/reaper`, reaper takes it as `--probe` and its deadline comes before the
/// kubelet's. `None` when there is no such probe.
fn reaper_probe(probe: &Yaml) -> Result<Option<ReaperProbe>, String> {
    if probe.is_badvalue() {
        return Ok(None);
    }
    let fields = keys(probe);
    if let Some(bad) = fields.iter().find(|k| !PROBE_FIELDS.contains(&k.as_str())) {
        return Err(format!("unknown probe field {bad:?}"));
    }
    let handlers = fields.iter().filter(|k| ["exec", "httpGet", "tcpSocket", "grpc"].contains(&k.as_str()));
    if handlers.count() != 1 {
        return Err("a probe needs exactly one of exec, httpGet, tcpSocket, grpc".into());
    }
    let kubelet = match &probe["timeoutSeconds"] {
        Yaml::BadValue => 1,
        Yaml::Integer(n) if *n >= 1 => *n as u64,
        other => return Err(format!("bad timeoutSeconds {other:?}")),
    };
    let command = strings(&probe["exec"]["command"]).map_err(|e| format!("exec.command: {e}"))?;
    if command.first().map(String::as_str) != Some("/reaper") {
        return Ok(None);
    }
    match options::parse(command[1..].iter().map(OsString::from), []) {
        Ok(Parsed::Probe { checks, timeout, max_zombies }) => {
            if timeout >= Duration::from_secs(kubelet) {
                return Err(format!(
                    "--timeout {timeout:?} must end before timeoutSeconds {kubelet}, or the kubelet \
                     kills the probe before it can say what failed"
                ));
            }
            Ok(Some((checks.into_iter().map(|(spec, _)| spec).collect(), max_zombies)))
        }
        other => Err(format!("{command:?}: not a reaper --probe: {other:?}")),
    }
}

fn keys(map: &Yaml) -> Vec<String> {
    map.as_hash()
        .map(|h| h.keys().filter_map(|k| k.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

fn strings(list: &Yaml) -> Result<Vec<String>, String> {
    match list {
        Yaml::BadValue => Ok(Vec::new()),
        Yaml::Array(items) => items
            .iter()
            .map(|i| match i {
                Yaml::String(s) => Ok(s.clone()),
                Yaml::Integer(n) => Ok(n.to_string()),
                other => Err(format!("not a string: {other:?}")),
            })
            .collect(),
        other => Err(format!("not a list: {other:?}")),
    }
}

/// Checks one manifest (one YAML document); `Err` describes the first problem.
fn check_manifest(text: &str) -> Result<Summary, String> {
    let docs = YamlLoader::load_from_str(text).map_err(|e| format!("YAML: {e}"))?;
    let [doc] = docs.as_slice() else {
        return Err(format!("expected one YAML document, found {}", docs.len()));
    };
    let api = doc["apiVersion"].as_str().ok_or("no apiVersion")?;
    let kind = doc["kind"].as_str().ok_or("no kind")?;
    doc["metadata"]["name"].as_str().ok_or("no metadata.name")?;
    let (want_api, pod) = match kind {
        "Pod" => ("v1", &doc["spec"]),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" => {
            ("apps/v1", &doc["spec"]["template"]["spec"])
        }
        "Job" => ("batch/v1", &doc["spec"]["template"]["spec"]),
        other => return Err(format!("unexpected kind {other}")),
    };
    if api != want_api {
        return Err(format!("{kind} needs apiVersion {want_api}, not {api}"));
    }
    if kind != "Pod" {
        let selector = &doc["spec"]["selector"]["matchLabels"];
        let labels = &doc["spec"]["template"]["metadata"]["labels"];
        if kind != "Job" && (selector.is_badvalue() || selector != labels) {
            return Err("spec.selector.matchLabels must equal the template's labels".into());
        }
    }
    if pod.as_hash().is_none() {
        return Err("no pod spec".into());
    }
    for key in keys(pod) {
        if !POD_SPEC_FIELDS.contains(&key.as_str()) {
            return Err(format!("unknown pod spec field {key:?}"));
        }
    }
    let grace = match &pod["terminationGracePeriodSeconds"] {
        Yaml::BadValue => 30,
        Yaml::Integer(n) if *n >= 0 => *n as u64,
        other => return Err(format!("bad terminationGracePeriodSeconds {other:?}")),
    };
    let share = match &pod["shareProcessNamespace"] {
        Yaml::BadValue => false,
        Yaml::Boolean(b) => *b,
        other => return Err(format!("bad shareProcessNamespace {other:?}")),
    };

    let mut summary = Summary { kind: kind.to_owned(), share_process_namespace: share, ..Summary::default() };
    let containers = pod["containers"].as_vec().ok_or("no containers")?;
    if containers.is_empty() {
        return Err("no containers".into());
    }
    let init = pod["initContainers"].as_vec().cloned().unwrap_or_default();
    for (c, is_init) in containers.iter().map(|c| (c, false)).chain(init.iter().map(|c| (c, true))) {
        let name = c["name"].as_str().ok_or("container without a name")?;
        c["image"].as_str().ok_or(format!("container {name}: no image"))?;
        for key in keys(c) {
            if !CONTAINER_FIELDS.contains(&key.as_str()) {
                return Err(format!("container {name}: unknown field {key:?}"));
            }
        }
        let sidecar = match &c["restartPolicy"] {
            Yaml::BadValue => false,
            Yaml::String(s) if is_init && s == "Always" => true,
            other => {
                return Err(format!(
                    "container {name}: restartPolicy {other:?} (only Always, on init containers)"
                ));
            }
        };
        let pre_stop = pre_stop(&c["lifecycle"]).map_err(|e| format!("container {name}: {e}"))?;
        for kind in ["livenessProbe", "readinessProbe", "startupProbe"] {
            if let Some((checks, max_zombies)) =
                reaper_probe(&c[kind]).map_err(|e| format!("container {name}: {kind}: {e}"))?
            {
                summary.probes.push((name.to_owned(), kind.to_owned(), checks, max_zombies));
            }
        }
        if !pre_stop.is_zero() {
            summary.pre_stop.push((name.to_owned(), pre_stop));
        }
        let command = strings(&c["command"]).map_err(|e| format!("{name}.command: {e}"))?;
        let args = strings(&c["args"]).map_err(|e| format!("{name}.args: {e}"))?;
        if command.first().map(String::as_str) != Some("/reaper") {
            continue;
        }
        let mut env = Vec::new();
        if let Some(vars) = c["env"].as_vec() {
            for v in vars {
                let key = v["name"].as_str().ok_or(format!("{name}: env without name"))?;
                let value = v["value"]
                    .as_str()
                    .ok_or(format!("{name}: env {key} needs a string value (quote it)"))?;
                env.push((key.to_owned(), OsString::from(value)));
            }
        }
        let argv = command[1..].iter().chain(&args).map(OsString::from);
        let opts = match options::parse(argv, env.iter().map(|(n, v)| (OsStr::new(n), v.as_os_str()))) {
            Ok(Parsed::Run(o)) => *o,
            Ok(other) => return Err(format!("container {name}: reaper would print {other:?}")),
            Err(e) => return Err(format!("container {name}: reaper rejects its options: {e}")),
        };
        // The hook runs first, from the same grace period; the TERM then waits --stop-delay;
        // --kill-after bounds the command's time after it (without it, nothing does).
        let kill_after = opts.kill_after.unwrap_or_default();
        if pre_stop + opts.stop_delay + kill_after + opts.drain >= Duration::from_secs(grace) {
            return Err(format!(
                "container {name}: preStop {pre_stop:?} + --stop-delay {:?} + --kill-after {kill_after:?} \
                 + --drain {:?} must stay below terminationGracePeriodSeconds {grace}",
                opts.stop_delay, opts.drain
            ));
        }
        summary.reaper_containers.push((name.to_owned(), sidecar, opts));
    }
    Ok(summary)
}

/// How long a container's preStop hook takes: `exec` of `/reaper --sleep D`, or the kubelet's
/// own `sleep` action; no hook is zero. Any other hook's length is unknown: an error.
fn pre_stop(lifecycle: &Yaml) -> Result<Duration, String> {
    for key in keys(lifecycle) {
        if !["preStop", "postStart"].contains(&key.as_str()) {
            return Err(format!("unknown lifecycle field {key:?}"));
        }
    }
    let hook = &lifecycle["preStop"];
    if hook.is_badvalue() {
        return Ok(Duration::ZERO);
    }
    match (keys(hook).as_slice(), &hook["sleep"]["seconds"]) {
        ([k], Yaml::Integer(n)) if k == "sleep" && *n >= 0 => return Ok(Duration::from_secs(*n as u64)),
        ([k], _) if k == "exec" => {}
        _ => return Err(format!("preStop: expected exec or sleep.seconds, got {hook:?}")),
    }
    let command = strings(&hook["exec"]["command"]).map_err(|e| format!("preStop.exec.command: {e}"))?;
    if command.first().map(String::as_str) != Some("/reaper") {
        return Err(format!("preStop {command:?}: cannot tell how long it takes"));
    }
    match options::parse(command[1..].iter().map(OsString::from), []) {
        Ok(Parsed::Sleep(d)) => Ok(d),
        other => Err(format!("preStop {command:?}: not a reaper --sleep: {other:?}")),
    }
}

fn manifest(name: &str) -> String {
    std::fs::read_to_string(deploy_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_manifest_parses_and_runs_reaper_with_valid_options() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(deploy_dir())
        .expect("deploy/kubernetes")
        .map(|e| e.expect("entry").path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "{files:?}");
    for f in &files {
        let text = std::fs::read_to_string(f).expect("read");
        let summary = check_manifest(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert!(!summary.reaper_containers.is_empty(), "{}: no container runs /reaper", f.display());
        for (name, _, opts) in &summary.reaper_containers {
            assert!(!opts.commands.is_empty(), "{}: {name}", f.display());
        }
    }
}

#[test]
fn entrypoint_example_sets_kill_after_below_the_grace_period() {
    let s = check_manifest(&manifest("entrypoint-deployment.yaml")).expect("valid");
    assert_eq!(s.kind, "Deployment");
    let (_, _, opts) = &s.reaper_containers[0];
    assert_eq!(opts.kill_after, Some(Duration::from_secs(25)));
    assert_eq!(opts.drain, Duration::from_secs(3));
    assert!(opts.warn_on_reap, "REAPER_WARN_ON_REAP from env");
}

#[test]
fn shared_pid_example_shares_the_process_namespace() {
    let s = check_manifest(&manifest("shared-process-namespace.yaml")).expect("valid");
    assert_eq!(s.kind, "Pod");
    assert!(s.share_process_namespace);
    assert!(s.reaper_containers.len() >= 2);
}

#[test]
fn native_sidecar_runs_under_reaper() {
    let s = check_manifest(&manifest("native-sidecar.yaml")).expect("valid");
    let sidecars: Vec<_> = s.reaper_containers.iter().filter(|c| c.1).collect();
    assert_eq!(sidecars.len(), 1, "{:?}", s.reaper_containers);
    assert!(sidecars[0].2.kill_after.is_some());
}

#[test]
fn the_checker_catches_typos_and_bad_options() {
    let good = manifest("entrypoint-deployment.yaml");
    check_manifest(&good).expect("the original is valid");
    for (from, to, why) in [
        ("terminationGracePeriodSeconds: 30", "terminationGracePeriodSecond: 30", "misspelt pod field"),
        ("\"3s\", \"--\"]", "\"3s\", \"--\"", "broken YAML"),
        ("kind: Deployment", "kind: Deploymnet", "unknown kind"),
        ("apiVersion: apps/v1", "apiVersion: v1", "wrong apiVersion"),
        ("\"25s\"", "\"25 parsecs\"", "bad duration"),
        ("\"25s\"", "\"28s\"", "kill-after + drain beyond the grace period"),
        ("\"--drain\"", "\"--drian\"", "unknown reaper option"),
        ("value: \"true\"", "value: \"maybe\"", "bad REAPER_ variable"),
        ("          image:", "          imag:", "misspelt container field"),
    ] {
        assert!(good.contains(from), "{from:?} not in the manifest");
        let bad = good.replacen(from, to, 1);
        assert!(check_manifest(&bad).is_err(), "{why}: accepted {from:?} -> {to:?}");
    }
}

#[test]
fn stop_delay_example_holds_the_term_within_the_budget() {
    let s = check_manifest(&manifest("stop-delay-deployment.yaml")).expect("valid");
    assert_eq!(s.kind, "Deployment");
    let (_, _, opts) = &s.reaper_containers[0];
    assert_eq!(opts.stop_delay, Duration::from_secs(5));
    assert_eq!(opts.kill_after, Some(Duration::from_secs(20)));
    assert!(s.pre_stop.is_empty(), "the entrypoint pattern needs no hook: {:?}", s.pre_stop);
}

#[test]
fn pre_stop_example_sleeps_with_reaper() {
    let s = check_manifest(&manifest("prestop-sleep-deployment.yaml")).expect("valid");
    assert_eq!(s.pre_stop, [("web".to_string(), Duration::from_secs(5))]);
    let (_, _, opts) = &s.reaper_containers[0];
    assert_eq!(opts.stop_delay, Duration::ZERO, "the hook does the waiting");
    assert_eq!(opts.kill_after, Some(Duration::from_secs(20)));
}

#[test]
fn the_checker_catches_budgets_beyond_the_grace_period() {
    for (file, from, to, why) in [
        (
            "stop-delay-deployment.yaml",
            "\"--stop-delay\", \"5s\"",
            "\"--stop-delay\", \"8s\"",
            "8 + 20 + 3 >= 30",
        ),
        (
            "stop-delay-deployment.yaml",
            "terminationGracePeriodSeconds: 30",
            "terminationGracePeriodSeconds: 28",
            "28",
        ),
        ("prestop-sleep-deployment.yaml", "\"--sleep\", \"5s\"]", "\"--sleep\", \"8s\"]", "8 + 20 + 3 >= 30"),
        (
            "prestop-sleep-deployment.yaml",
            "\"--sleep\", \"5s\"]",
            "\"--sleep\", \"5s\", \"x\"]",
            "--sleep with a command",
        ),
        (
            "prestop-sleep-deployment.yaml",
            "\"/reaper\", \"--sleep\"",
            "\"/bin/sleep\", \"--sleep\"",
            "unknown length",
        ),
        ("prestop-sleep-deployment.yaml", "preStop:", "preStpo:", "misspelt lifecycle field"),
    ] {
        let good = manifest(file);
        check_manifest(&good).expect("the original is valid");
        assert!(good.contains(from), "{from:?} not in {file}");
        let bad = good.replacen(from, to, 1);
        assert!(check_manifest(&bad).is_err(), "{file}: {why}: accepted {from:?} -> {to:?}");
    }
    // The kubelet's own sleep action counts the same.
    let good = manifest("prestop-sleep-deployment.yaml");
    let hook = "exec:\n                command: [\"/reaper\", \"--sleep\", \"5s\"]";
    assert!(good.contains(hook), "{good}");
    let s = check_manifest(&good.replacen(hook, "sleep:\n                seconds: 5", 1)).expect("valid");
    assert_eq!(s.pre_stop, [("web".to_string(), Duration::from_secs(5))]);
    assert!(check_manifest(&good.replacen(hook, "sleep:\n                seconds: 8", 1)).is_err());
}

#[test]
fn runtime_snippets_name_the_pause_image() {
    let containerd = manifest("containerd-sandbox.toml");
    assert!(containerd.contains("[plugins.'io.containerd.cri.v1.images'.pinned_images]"));
    assert!(containerd.contains("sandbox = \"registry.example.com/reaper-pause:"));
    assert!(containerd.contains("sandbox_image = \"registry.example.com/reaper-pause:"));
    let crio = manifest("crio-pause.conf");
    assert!(crio.contains("[crio.image]"));
    assert!(crio.contains("pause_image = \"registry.example.com/reaper-pause:"));
    assert!(crio.contains("\npause_command = \"\"\n"));
}

/// Dockerfile (from source) and Dockerfile.local (from a built binary) make the same images:
/// the same targets, labels, user and entrypoints, in the same order.
#[test]
fn dockerfile_and_dockerfile_local_make_the_same_images() {
    let read = |f: &str| std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(f)).expect(f);
    let image_lines = |text: &str| -> Vec<String> {
        let mut lines = Vec::new();
        let mut continued = false;
        for l in text.lines() {
            let keep =
                continued || ["LABEL ", "USER ", "ENTRYPOINT ", "CMD "].iter().any(|k| l.starts_with(k));
            let target = l.starts_with("FROM ").then(|| l.rsplit(' ').next().unwrap_or("").to_owned());
            lines.extend(target.filter(|t| t == "pause" || t == "runtime").map(|t| format!("target {t}")));
            if keep {
                lines.push(l.trim().to_owned());
            }
            continued = keep && l.ends_with('\\');
        }
        lines
    };
    let from_source = image_lines(&read("Dockerfile"));
    assert!(from_source.iter().any(|l| l.contains("licenses=\"MIT\"")), "{from_source:?}");
    assert_eq!(image_lines(&read("Dockerfile.local")), from_source);
}

/// The Dockerfiles' ENTRYPOINTs are command lines reaper accepts: `/reaper --` plus the
/// user's command, and `/reaper --pause` alone.
#[test]
fn dockerfile_entrypoints_are_valid_reaper_command_lines() {
    let dockerfile = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile"))
        .expect("Dockerfile");
    let entrypoints: Vec<Vec<String>> = dockerfile
        .lines()
        .filter_map(|l| l.strip_prefix("ENTRYPOINT "))
        .map(|json| {
            let docs = YamlLoader::load_from_str(json).expect("JSON array");
            strings(&docs[0]).expect("strings")
        })
        .collect();
    assert!(entrypoints.contains(&vec!["/reaper".into(), "--".into()]), "{entrypoints:?}");
    assert!(entrypoints.contains(&vec!["/reaper".into(), "--pause".into()]), "{entrypoints:?}");
    for ep in &entrypoints {
        assert_eq!(ep[0], "/reaper");
        let pause = ep.iter().any(|a| a == "--pause");
        let mut argv: Vec<OsString> = ep[1..].iter().map(OsString::from).collect();
        if !pause {
            argv.push("my-server".into());
        }
        match options::parse(argv, []) {
            Ok(Parsed::Run(o)) => {
                assert_eq!(o.pause, pause, "{ep:?}");
                if !pause {
                    let argv: Vec<&[OsString]> = o.commands.iter().map(|c| c.argv.as_slice()).collect();
                    assert_eq!(argv, [&[OsString::from("my-server")][..]]);
                }
            }
            other => panic!("{ep:?}: {other:?}"),
        }
    }
}

#[test]
fn probe_example_runs_reaper_probe_within_the_kubelet_timeout() {
    let s = check_manifest(&manifest("probe-deployment.yaml")).expect("valid");
    let probe = |name: &str, kind: &str, checks: &[&str], max: Option<u64>| {
        (name.to_owned(), kind.to_owned(), checks.iter().map(|c| c.to_string()).collect::<Vec<_>>(), max)
    };
    assert_eq!(
        s.probes,
        [
            probe("web", "livenessProbe", &["fresh:2m:/tmp/heartbeat"], Some(50)),
            probe("web", "readinessProbe", &["http://127.0.0.1:9090/ready"], None),
        ]
    );
    let good = manifest("probe-deployment.yaml");
    for (from, to, why) in [
        ("\"--timeout\", \"2s\"]", "\"--timeout\", \"3s\"]", "--timeout not below timeoutSeconds 3"),
        (
            "            periodSeconds: 5\n            timeoutSeconds: 3\n",
            "            periodSeconds: 5\n",
            "the kubelet's default 1 s",
        ),
        ("http://127.0.0.1:9090/ready", "https://127.0.0.1:9090/ready", "https"),
        ("http://127.0.0.1:9090/ready", "http://127.0.0.1:9090/re ady", "a space in the path"),
        ("fresh:2m:/tmp/heartbeat", "fresh:2 months:/tmp/heartbeat", "bad duration"),
        ("\"/reaper\", \"--probe\"", "\"/reaper\", \"--prob\"", "unknown option"),
        ("                - \"50\"", "                - \"lots\"", "bad zombie count"),
        ("            periodSeconds: 30", "            periodSecond: 30", "misspelt probe field"),
        (
            "            exec:\n              command: [",
            "            tcpSocket: {port: 8080}\n            exec:\n              command: [",
            "two handlers",
        ),
    ] {
        assert!(good.contains(from), "{from:?} not in the manifest");
        let bad = good.replacen(from, to, 1);
        assert!(check_manifest(&bad).is_err(), "{why}: accepted {from:?} -> {to:?}");
    }
}
