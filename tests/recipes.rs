//! The recipes of docs/recipes.md, each run against the real server from Debian's packages (or
//! PyPI for gunicorn, in target/recipes-venv), with reaper as PID 1 and as a plain process.
//! scripts/install-deps installs them; a missing one makes its test print "skipped: …".
//! The reaper options and the command come from the page's `ENTRYPOINT` and `CMD` lines, with
//! the test's paths and port put in place of the image's and the test's configuration file
//! added right after the program's name: what the page says is what runs.
//!
//! Each server runs as nobody (setpriv, util-linux) in the test's own directory, on a free high
//! port, from a configuration file the test writes: nothing of /etc's defaults (port 80, the
//! packaged run directories) is used. Each test checks what the recipe promises:
//! - where the server has a graceful stop, a request in flight when TERM reaches reaper
//!   completes: a rate-limited download (nginx, Apache), a PHP script and a WSGI app that take
//!   their time (php-fpm behind nginx, gunicorn), read by a Python client that checks the
//!   status and the full length;
//! - reaper exits 0;
//! - no zombie under reaper while the server runs (a self-daemonizing server's first process
//!   was reaped), and nothing is left afterwards: no process in the test's directory, nothing
//!   listening on the port.
//!
//! Needs root (setpriv to nobody; unprivileged servers are the point of the recipes).

mod common;

use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;

const LONG: Duration = Duration::from_secs(60);

/// The prefix that runs a server as nobody.
const AS_NOBODY: [&str; 5] = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"];

/// A rate-limited download of this size at 64 KB/s lasts about 4 s: time for the server to log
/// its stop while the download is still under way, on a loaded machine.
const BIG: usize = 256 * 1024;

/// The test's directory, owned by nobody so the server can write its pidfile, logs and sockets.
/// Removed when the test passes (a PostgreSQL cluster is 40 MB); kept for a look when it fails.
/// Declared before the `Guard`, so it goes after the guard has killed what was left.
struct ServerDir(PathBuf);

impl std::ops::Deref for ServerDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for ServerDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for ServerDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn server_dir(tag: &str) -> ServerDir {
    let dir = tempdir(tag);
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
    ServerDir(dir)
}

/// Writes `name` under `dir` (readable by the server).
fn write(dir: &Path, name: &str, text: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// A port nothing listens on now (the kernel's pick among the ephemeral ones).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap()
}

fn listening(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// Prints `NAME: skipped: WHY` straight to stderr, past the test harness's capture, so a
/// normal run shows which recipes did not run.
fn skip(name: &str, why: &str) {
    use std::io::Write;
    // One write: the tests of the other mode print theirs at the same time.
    let _ = std::io::stderr().write_all(format!("{name}: skipped: {why}\n").as_bytes());
}

/// `NAME: skipped: …` and false when not root or when `prog` is missing.
fn available(name: &str, prog: &str) -> bool {
    if !is_root() {
        skip(name, "needs root (the server runs as nobody)");
        return false;
    }
    if which(prog).is_none() && !Path::new(prog).is_file() {
        skip(name, &format!("{prog} not installed (scripts/install-deps)"));
        return false;
    }
    true
}

// --- the page's recipes --------------------------------------------------------------------

/// The strings of a JSON array of strings, as a Dockerfile's exec form writes them.
fn json_strings(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            continue;
        }
        let mut s = String::new();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => s.extend(chars.next()),
                c => s.push(c),
            }
        }
        out.push(s);
    }
    out
}

/// A recipe of docs/recipes.md: reaper's options (the `ENTRYPOINT` between `/reaper` and `--`)
/// and the command (`CMD`).
struct Recipe {
    options: Vec<String>,
    command: Vec<String>,
}

fn recipe(name: &str) -> Recipe {
    assert!(TESTED.contains(&name), "recipe {name:?} is not in TESTED");
    let page = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/recipes.md"))
        .expect("docs/recipes.md");
    let marker = format!("<!-- recipe: {name} ");
    let after =
        page.split_once(&marker).unwrap_or_else(|| panic!("docs/recipes.md has no recipe {name:?}")).1;
    let block = after.split_once("\n```").and_then(|(_, b)| b.split_once("\n```")).map(|(b, _)| b);
    let block = block.unwrap_or_else(|| panic!("recipe {name:?}: no fenced block"));
    let line = |key: &str| {
        let l = block.lines().find(|l| l.starts_with(key));
        json_strings(l.unwrap_or_else(|| panic!("recipe {name:?}: no {key}line:\n{block}")))
    };
    let entry = line("ENTRYPOINT ");
    assert!(
        entry.first().map(String::as_str) == Some("/reaper")
            && entry.last().map(String::as_str) == Some("--"),
        "recipe {name:?}: ENTRYPOINT is not [\"/reaper\", …, \"--\"]: {entry:?}"
    );
    Recipe { options: entry[1..entry.len() - 1].to_vec(), command: line("CMD ") }
}

/// The recipes the tests below run; the page has no other.
const TESTED: [&str; 8] =
    ["nginx", "nginx-daemon", "nginx-php-fpm", "apache", "gunicorn", "redis", "postgres", "pg_ctl"];

#[test]
fn every_recipe_on_the_page_is_tested() {
    let page = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/recipes.md"))
        .expect("docs/recipes.md");
    let mut names: Vec<&str> =
        page.split("<!-- recipe: ").skip(1).filter_map(|rest| rest.split_whitespace().next()).collect();
    names.sort_unstable();
    let mut tested = TESTED.to_vec();
    tested.sort_unstable();
    assert_eq!(names, tested, "docs/recipes.md's recipes and the ones tests/recipes.rs runs");
    // Each parses: an ENTRYPOINT of reaper's and a CMD.
    for name in TESTED {
        assert!(!recipe(name).command.is_empty(), "recipe {name:?}: empty CMD");
    }
}

impl Recipe {
    /// Replaces each occurrence of `from` in every word, options and command.
    fn subst(mut self, from: &str, to: &str) -> Recipe {
        for w in self.options.iter_mut().chain(self.command.iter_mut()) {
            *w = w.replace(from, to);
        }
        self
    }

    /// The program (the command's first word) becomes `path`.
    fn program(mut self, path: &str) -> Recipe {
        self.command[0] = path.to_owned();
        self
    }

    /// `args` right after the program's name (the test's configuration file and the like).
    fn config<S: AsRef<str>>(mut self, args: &[S]) -> Recipe {
        self.command.splice(1..1, args.iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// reaper OPTIONS -- setpriv … COMMAND, in `mode`, working in `dir`, logging at info, with
    /// `env` for the server.
    fn start_env(&self, mode: Mode, dir: &Path, env: &[(&str, &Path)]) -> (Reaper, Guard) {
        let mut cmd = cmd_in(mode, dir, &self.options);
        cmd.arg("--").args(AS_NOBODY).args(&self.command).env("REAPER_LOG", "info");
        cmd.envs(env.iter().copied());
        let r = Reaper::start(mode, &mut cmd);
        let g = Guard::new(&r, dir);
        (r, g)
    }

    fn start(&self, mode: Mode, dir: &Path) -> (Reaper, Guard) {
        self.start_env(mode, dir, &[])
    }
}

/// What reaper, and the server's own log, said: for failure messages.
fn logs(dir: &Path, server_log: &str) -> String {
    if server_log == STDERR {
        return format!("reaper and the server:\n{}", stderr_of(dir));
    }
    let server = std::fs::read_to_string(dir.join(server_log)).unwrap_or_default();
    format!("reaper:\n{}\n{server_log}:\n{server}", stderr_of(dir))
}

/// Waits until the server answers on `port` (and, with `--follow-pidfile`, reaper follows it).
fn wait_serving(r: &Reaper, dir: &Path, port: u16, follows: bool, server_log: &str) {
    let mode = r.mode;
    assert!(
        wait_until(LONG, || listening(port) || !alive(r.pid)),
        "{mode:?}: never listened on {port}\n{}",
        logs(dir, server_log)
    );
    assert!(alive(r.pid), "{mode:?}: reaper exited\n{}", logs(dir, server_log));
    if follows {
        assert!(
            wait_until(LONG, || stderr_of(dir).contains("following pid") || !alive(r.pid)),
            "{mode:?}: reaper never followed the daemon\n{}",
            logs(dir, server_log)
        );
        assert!(stderr_of(dir).contains("following pid"), "{mode:?}: {}", logs(dir, server_log));
    }
    // A self-daemonizing server's first process exited: reaper reaped it, and nothing else
    // died unreaped.
    assert!(
        wait_until(LONG, || zombies_under(r.pid).is_empty()),
        "{mode:?}: zombies under reaper: {:?}\n{}",
        zombies_under(r.pid),
        logs(dir, server_log)
    );
}

/// An HTTP GET of `path` that writes `STATUS LENGTH` (or the error) to `out` once the response
/// is complete, and `out.started` once the first byte of the body has arrived.
fn http_get(dir: &Path, port: u16, path: &str, out: &Path) -> Child {
    const CLIENT: &str = r#"
import http.client, sys
port, path, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
try:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=50)
    c.request("GET", path)
    r = c.getresponse()
    body = r.read(1)
    open(out + ".started", "w").close()
    body += r.read()
    result = "%d %d" % (r.status, len(body))
except Exception as e:
    result = "error: %r" % e
with open(out, "w") as f:
    f.write(result)
"#;
    let mut cmd = Command::new("python3");
    cmd.args(["-c", CLIENT, &port.to_string(), path, out.to_str().unwrap()])
        .current_dir(dir)
        .stdin(Stdio::null())
        .process_group(0);
    cmd.spawn().expect("spawn python3")
}

/// A slow request and how the server shows it is stopping.
struct InFlight<'a> {
    path: &'a str,
    /// The body's length.
    len: usize,
    /// The server's log (a file in the test's directory; reaper.stderr for servers that write
    /// to stderr) and what it writes there when the stop signal arrives.
    log: &'a str,
    stopping: &'a str,
    /// An application (PHP, WSGI) that creates `started` when the request reaches it and then
    /// answers only once `release` exists; else a rate-limited download (4 s), under way once
    /// the client has the first byte.
    app: bool,
}

/// nginx's in-flight download and its log line on a graceful stop (both nginx recipes).
const NGINX_BIG: InFlight<'static> =
    InFlight { path: "/big", len: BIG, log: "error.log", stopping: "gracefully shutting down", app: false };

/// Where an application that waits (`InFlight::app`) is told to answer.
const RELEASE: &str = "release";

/// The graceful stop: a request is in flight when TERM reaches reaper, is still in flight
/// when the server says it is stopping, and completes with 200 and its full length.
fn term_during_request(r: &Reaper, dir: &Path, port: u16, req: InFlight) {
    let mode = r.mode;
    let out = dir.join("response");
    let started =
        if req.app { dir.join("started") } else { PathBuf::from(format!("{}.started", out.display())) };
    let mut client = http_get(dir, port, req.path, &out);
    assert!(
        wait_until(LONG, || started.exists() || out.exists()),
        "{mode:?}: the request never started\n{}",
        logs(dir, req.log)
    );
    r.signal(libc::SIGTERM);
    let log = || std::fs::read_to_string(dir.join(req.log)).unwrap_or_default();
    assert!(
        wait_until(LONG, || log().contains(req.stopping)),
        "{mode:?}: the server never logged {:?}\n{}",
        req.stopping,
        logs(dir, req.log)
    );
    assert!(!out.exists(), "{mode:?}: the request was over before the server stopping: make it slower");
    if req.app {
        write(dir, RELEASE, "");
    }
    let done = wait_child(&mut client, LONG);
    if done.is_none() {
        let _ = client.kill();
        let _ = client.wait();
    }
    let response = std::fs::read_to_string(&out).unwrap_or_default();
    assert_eq!(
        response,
        format!("200 {}", req.len),
        "{mode:?}: the request in flight at TERM\n{}",
        logs(dir, req.log)
    );
}

/// reaper exits 0 and leaves nothing behind.
fn assert_clean_exit(r: &mut Reaper, dir: &Path, port: u16, log: &str) {
    let mode = r.mode;
    let code = r.wait_timeout(LONG).map(exit_code);
    assert_eq!(code, Some(0), "{mode:?}: reaper's exit\n{}", logs(dir, log));
    assert!(
        wait_until(Duration::from_secs(10), || processes_using(dir).is_empty()),
        "{mode:?}: left running: {:?}\n{}",
        processes_using(dir),
        logs(dir, log)
    );
    assert!(!listening(port), "{mode:?}: something still listens on {port}");
}

// --- nginx -------------------------------------------------------------------------------

/// A server on `port` whose file `big` downloads at 64 KB/s, everything in `dir`.
fn nginx_conf(dir: &Path, port: u16, extra: &str) -> PathBuf {
    let d = dir.display();
    write(dir, "www/big", vec![b'x'; BIG]);
    let conf = format!(
        "worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log notice;
events {{}}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {d}/www;
        location /big {{ limit_rate 64k; }}
        {extra}
    }}
}}
"
    );
    write(dir, "nginx.conf", conf)
}

/// `-p DIR/ -c DIR/nginx.conf -e DIR/error.log`: nothing from /etc/nginx or /var/log.
fn nginx_config(dir: &Path) -> Vec<String> {
    let d = dir.display();
    vec![
        "-p".into(),
        format!("{d}/"),
        "-c".into(),
        format!("{d}/nginx.conf"),
        "-e".into(),
        format!("{d}/error.log"),
    ]
}

fn nginx_foreground_quits_gracefully(mode: Mode) {
    let name = "nginx_foreground_quits_gracefully";
    if !available(name, "nginx") {
        return;
    }
    let dir = server_dir("recipe-nginx-fg");
    let port = free_port();
    nginx_conf(&dir, port, "");
    let (mut r, _g) = recipe("nginx").config(&nginx_config(&dir)).start(mode, &dir);
    wait_serving(&r, &dir, port, false, "error.log");
    term_during_request(&r, &dir, port, NGINX_BIG);
    assert_clean_exit(&mut r, &dir, port, "error.log");
}

both_modes!(nginx_foreground_quits_gracefully);

fn nginx_daemon_is_followed_and_quits_gracefully(mode: Mode) {
    let name = "nginx_daemon_is_followed_and_quits_gracefully";
    if !available(name, "nginx") {
        return;
    }
    let dir = server_dir("recipe-nginx-daemon");
    let port = free_port();
    nginx_conf(&dir, port, "");
    let pidfile = dir.join("nginx.pid");
    let (mut r, _g) = recipe("nginx-daemon")
        .subst("/run/nginx.pid", pidfile.to_str().unwrap())
        .config(&nginx_config(&dir))
        .start(mode, &dir);
    wait_serving(&r, &dir, port, true, "error.log");
    term_during_request(&r, &dir, port, NGINX_BIG);
    assert_clean_exit(&mut r, &dir, port, "error.log");
    assert!(!pidfile.exists(), "{mode:?}: nginx left its pidfile");
}

both_modes!(nginx_daemon_is_followed_and_quits_gracefully);

// --- php-fpm beside nginx ----------------------------------------------------------------

fn php_fpm() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/sbin")
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("php-fpm")))
        .collect();
    found.sort();
    found.pop()
}

fn nginx_and_php_fpm_quit_gracefully(mode: Mode) {
    let name = "nginx_and_php_fpm_quit_gracefully";
    if !available(name, "nginx") {
        return;
    }
    let Some(fpm) = php_fpm() else {
        return skip(name, "php-fpm not installed (scripts/install-deps)");
    };
    let dir = server_dir("recipe-nginx-php");
    let d = dir.display();
    let port = free_port();
    // process_control_timeout: without it php-fpm's QUIT turns into TERM for its workers at
    // once, and the request in flight is cut.
    write(
        &dir,
        "php-fpm.conf",
        format!(
            "[global]
pid = {d}/php-fpm.pid
error_log = {d}/php-fpm.log
process_control_timeout = 30s
[www]
listen = {d}/php-fpm.sock
pm = static
pm.max_children = 2
"
        ),
    );
    // Waits for the test's word (at most 30 s), polling: PHP's sleep() would return early
    // when the stop signal interrupts it.
    write(
        &dir,
        "www/slow.php",
        format!(
            "<?php
touch('{d}/started');
$end = microtime(true) + 30;
while (!file_exists('{d}/{RELEASE}') && microtime(true) < $end) {{ usleep(20000); clearstatcache(); }}
echo str_repeat('x', 1000);
"
        ),
    );
    nginx_conf(
        &dir,
        port,
        &format!(
            "location ~ \\.php$ {{
            fastcgi_pass unix:{d}/php-fpm.sock;
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            fastcgi_param REQUEST_METHOD $request_method;
        }}"
        ),
    );
    let also = format!("{} {} -y {d}/php-fpm.conf", AS_NOBODY.join(" "), fpm.display());
    let (mut r, _g) =
        recipe("nginx-php-fpm").subst("php-fpm", &also).config(&nginx_config(&dir)).start(mode, &dir);
    wait_serving(&r, &dir, port, false, "php-fpm.log");
    assert!(
        wait_until(LONG, || dir.join("php-fpm.sock").exists()),
        "{mode:?}: php-fpm never listened\n{}",
        logs(&dir, "php-fpm.log")
    );
    let req = InFlight { path: "/slow.php", len: 1000, log: "php-fpm.log", stopping: "Finishing", app: true };
    term_during_request(&r, &dir, port, req);
    assert_clean_exit(&mut r, &dir, port, "php-fpm.log");
    let log = std::fs::read_to_string(dir.join("php-fpm.log")).unwrap_or_default();
    assert!(log.contains("exiting, bye-bye"), "{mode:?}: {log}");
}

both_modes!(nginx_and_php_fpm_quit_gracefully);

// --- Apache ------------------------------------------------------------------------------

fn apache_is_followed_and_stops_gracefully(mode: Mode) {
    let name = "apache_is_followed_and_stops_gracefully";
    if !available(name, "apachectl") {
        return;
    }
    let dir = server_dir("recipe-apache");
    let d = dir.display();
    let port = free_port();
    let m = "/usr/lib/apache2/modules";
    write(&dir, "www/big", vec![b'x'; BIG]);
    write(
        &dir,
        "apache2.conf",
        format!(
            "ServerRoot {d}
ServerName localhost
Listen 127.0.0.1:{port}
PidFile ${{APACHE_PID_FILE}}
DefaultRuntimeDir ${{APACHE_RUN_DIR}}
ErrorLog {d}/error.log
LoadModule mpm_event_module {m}/mod_mpm_event.so
LoadModule authz_core_module {m}/mod_authz_core.so
LoadModule ratelimit_module {m}/mod_ratelimit.so
LoadModule env_module {m}/mod_env.so
DocumentRoot {d}/www
<Directory {d}/www>
    Require all granted
    SetOutputFilter RATE_LIMIT
    SetEnv rate-limit 64
</Directory>
"
        ),
    );
    // What Debian's /etc/apache2/envvars sets, for this directory; apachectl reads
    // $APACHE_CONFDIR/envvars and runs `apache2 -d $APACHE_CONFDIR -k start`.
    write(
        &dir,
        "envvars",
        format!(
            "export APACHE_RUN_USER=nobody APACHE_RUN_GROUP=nogroup APACHE_PID_FILE={d}/apache2.pid
export APACHE_RUN_DIR={d} APACHE_LOCK_DIR={d} APACHE_LOG_DIR={d}
"
        ),
    );
    let pidfile = dir.join("apache2.pid");
    let (mut r, _g) = recipe("apache")
        .subst("/var/run/apache2/apache2.pid", pidfile.to_str().unwrap())
        .start_env(mode, &dir, &[("APACHE_CONFDIR", &dir)]);
    wait_serving(&r, &dir, port, true, "error.log");
    let stopping = "caught SIGWINCH, shutting down gracefully";
    let req = InFlight { path: "/big", len: BIG, log: "error.log", stopping, app: false };
    term_during_request(&r, &dir, port, req);
    assert_clean_exit(&mut r, &dir, port, "error.log");
}

both_modes!(apache_is_followed_and_stops_gracefully);

// --- gunicorn ----------------------------------------------------------------------------

/// gunicorn in the virtual environment scripts/install-deps makes.
fn gunicorn() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/recipes-venv/bin/gunicorn")
}

fn gunicorn_stops_gracefully(mode: Mode) {
    let name = "gunicorn_stops_gracefully";
    let bin = gunicorn();
    if !available(name, bin.to_str().unwrap()) {
        return;
    }
    let dir = server_dir("recipe-gunicorn");
    let port = free_port();
    write(
        &dir,
        "app.py",
        format!(
            r#"import os, time
def app(environ, start_response):
    open("{d}/started", "w").close()
    end = time.monotonic() + 30
    while not os.path.exists("{d}/{RELEASE}") and time.monotonic() < end:
        time.sleep(0.02)
    body = b"x" * 1000
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"#,
            d = dir.display()
        ),
    );
    let (mut r, _g) = recipe("gunicorn")
        .subst("0.0.0.0:8000", &format!("127.0.0.1:{port}"))
        .program(bin.to_str().unwrap())
        .config(&["--chdir", dir.to_str().unwrap()])
        .start(mode, &dir);
    wait_serving(&r, &dir, port, false, STDERR);
    let req = InFlight { path: "/", len: 1000, log: STDERR, stopping: "Handling signal: term", app: true };
    term_during_request(&r, &dir, port, req);
    assert_clean_exit(&mut r, &dir, port, STDERR);
    assert!(stderr_of(&dir).contains("Shutting down: Master"), "{mode:?}: {}", stderr_of(&dir));
}

both_modes!(gunicorn_stops_gracefully);

// --- redis -------------------------------------------------------------------------------

fn redis_daemon_is_followed_and_saves(mode: Mode) {
    let name = "redis_daemon_is_followed_and_saves";
    if !available(name, "redis-server") || !available(name, "redis-cli") {
        return;
    }
    let dir = server_dir("recipe-redis");
    let d = dir.display();
    let port = free_port();
    let pidfile = dir.join("redis.pid");
    let conf = write(
        &dir,
        "redis.conf",
        format!(
            "bind 127.0.0.1
port {port}
dir {d}
logfile {d}/redis.log
save 3600 1
"
        ),
    );
    let (mut r, _g) = recipe("redis")
        .subst("/run/redis.pid", pidfile.to_str().unwrap())
        .config(&[conf.to_str().unwrap()])
        .start(mode, &dir);
    wait_serving(&r, &dir, port, true, "redis.log");
    let (code, out, err) = run_with_timeout(
        Command::new("redis-cli").args(["-p", &port.to_string(), "set", "recipe", "kept"]),
        LONG,
    );
    assert_eq!((code, out.trim()), (0, "OK"), "{mode:?}: redis-cli: {err}");
    r.signal(libc::SIGTERM);
    assert_clean_exit(&mut r, &dir, port, "redis.log");
    let log = std::fs::read_to_string(dir.join("redis.log")).unwrap_or_default();
    assert!(log.contains("DB saved on disk"), "{mode:?}: {log}");
    assert!(dir.join("dump.rdb").exists(), "{mode:?}: no dump.rdb\n{log}");
}

both_modes!(redis_daemon_is_followed_and_saves);

// --- PostgreSQL -----------------------------------------------------------------------------

/// The newest PostgreSQL's bin directory, if one is installed.
fn postgres_bin() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("postgres").exists())
        .collect();
    found.sort_by_key(|p| p.parent().and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok()));
    found.pop()
}

/// Runs the PostgreSQL recipe `name` (postgres or pg_ctl) and checks the fast shutdown.
fn postgres_shuts_down_fast(mode: Mode, test: &str, name: &str) {
    if !is_root() {
        return skip(test, "needs root (the server runs as nobody)");
    }
    let Some(bin) = postgres_bin() else {
        return skip(test, "postgresql not installed (scripts/install-deps)");
    };
    let tool = |t: &str| bin.join(t).to_str().unwrap().to_owned();
    let dir = server_dir(&format!("recipe-{name}"));
    let data = dir.join("data");
    let data_s = data.to_str().unwrap();
    let mut initdb = Command::new("setpriv");
    initdb.args(&AS_NOBODY[1..]).args([&tool("initdb"), "-D", data_s, "-A", "trust", "-U", "postgres"]);
    let (code, _, err) = run_with_timeout(initdb.current_dir(&dir), LONG);
    assert_eq!(code, 0, "initdb: {err}");
    let port = free_port();
    let port_s = port.to_string();
    // TCP on a free port (to check that it is closed afterwards), the socket in the data
    // directory (the packaged default, /run/postgresql, is root's).
    let server = ["-c", "listen_addresses=127.0.0.1", "-p", &port_s, "-k", data_s];
    let (log, follows, recipe) = if name == "postgres" {
        let recipe = recipe(name).subst("/var/lib/postgresql/data", data_s).program(&tool("postgres"));
        (STDERR, false, recipe.config(&server))
    } else {
        let log = dir.join("server.log");
        let config = ["-o", &server.join(" "), "-l", log.to_str().unwrap()];
        let recipe =
            recipe(name).subst("/var/lib/postgresql/data", data_s).program(&tool("pg_ctl")).config(&config);
        ("server.log", true, recipe)
    };
    let (mut r, _g) = recipe.start(mode, &dir);
    wait_serving(&r, &dir, port, follows, log);
    let mut ready = Command::new("setpriv");
    ready.args(&AS_NOBODY[1..]).args([&tool("pg_isready"), "-h", data_s, "-p", &port_s, "-U", "postgres"]);
    assert!(
        wait_until(LONG, || run_with_timeout(ready.current_dir(&dir), LONG).0 == 0),
        "{mode:?}: never ready\n{}",
        logs(&dir, log)
    );
    r.signal(libc::SIGTERM);
    assert_clean_exit(&mut r, &dir, port, log);
    let server_log = std::fs::read_to_string(dir.join(log)).unwrap_or_default();
    assert!(server_log.contains("fast shutdown request"), "{mode:?}: {}", logs(&dir, log));
    let mut control = Command::new(tool("pg_controldata"));
    let (_, control, _) = run_with_timeout(control.args(["-D", data_s]), LONG);
    let state = control.lines().find(|l| l.starts_with("Database cluster state:")).unwrap_or_default();
    assert!(state.ends_with(" shut down"), "{mode:?}: {state}\n{control}");
}

fn postgres_foreground_shuts_down_fast(mode: Mode) {
    postgres_shuts_down_fast(mode, "postgres_foreground_shuts_down_fast", "postgres");
}

both_modes!(postgres_foreground_shuts_down_fast);

fn pg_ctl_is_followed_and_shuts_down_fast(mode: Mode) {
    postgres_shuts_down_fast(mode, "pg_ctl_is_followed_and_shuts_down_fast", "pg_ctl");
}

both_modes!(pg_ctl_is_followed_and_shuts_down_fast);
