//! Embeds the source commit for `reaper --version` (`reaper X.Y.Z - git.COMMIT`, the format
//! dockerd parses for `docker info`'s init version) as `REAPER_GIT_COMMIT`.
//!
//! COMMIT is, in order: `$REAPER_BUILD_COMMIT` if set (builds without a repository, e.g. the
//! Dockerfile's `build` stage, whose context has no .git); `git rev-parse --short=12 HEAD` when
//! this crate is the top of its own git work tree (not a crate vendored inside some other
//! repository); else the fixed word `unknown`. No timestamps or paths: the same commit gives
//! the same binary.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=REAPER_BUILD_COMMIT");
    let commit = match std::env::var("REAPER_BUILD_COMMIT") {
        Ok(c) if !c.trim().is_empty() => c.trim().to_owned(),
        _ => git_commit().unwrap_or_else(|| "unknown".to_owned()),
    };
    // dockerd splits `git.COMMIT` on '.': a dot (or a space) would lose the commit.
    let commit: String =
        commit.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' }).collect();
    println!("cargo:rustc-env=REAPER_GIT_COMMIT={commit}");
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").arg("-C").arg(dir).args(args).output().ok()?;
    let s = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !s.trim().is_empty()).then(|| s.trim().to_owned())
}

fn git_commit() -> Option<String> {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
    let top = git(&dir, &["rev-parse", "--show-toplevel"])?;
    if Path::new(&top).canonicalize().ok()? != dir.canonicalize().ok()? {
        return None;
    }
    // Rebuild when HEAD moves: HEAD itself (a checkout), the branch it names (a commit), and
    // packed-refs (where the branch lives once packed). --git-path resolves worktrees, whose
    // HEAD is private but whose refs are shared. Only existing files: cargo reruns the build
    // script every time for a missing one.
    let mut watch = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    if let Some(branch) = git(&dir, &["symbolic-ref", "-q", "HEAD"]) {
        watch.push(branch);
    }
    for name in watch {
        if let Some(path) = git(&dir, &["rev-parse", "--path-format=absolute", "--git-path", &name]) {
            if Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
    git(&dir, &["rev-parse", "--short=12", "HEAD"])
}
