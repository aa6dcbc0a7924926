//! Embeds the git revision for `keycard --version`.
//!
//! `KEYCARD_GIT_REV` wins when set (container builds and source tarballs have no `.git`);
//! otherwise `git rev-parse`, when this crate is the top of a git work tree; otherwise
//! "unknown". A version string must never fail a build.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // sqlx::migrate! embeds migrations/ at compile time; with a build script present, Cargo
    // rebuilds for a new migration only when told to watch the directory.
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-env-changed=KEYCARD_GIT_REV");
    let rev = std::env::var("KEYCARD_GIT_REV")
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .or_else(git_rev)
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=KEYCARD_GIT_REV={rev}");
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!text.is_empty()).then_some(text)
}

fn git_rev() -> Option<String> {
    // A tarball unpacked inside some other repository must not report that one's HEAD.
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")?;
    let top = PathBuf::from(git(&["rev-parse", "--show-toplevel"])?);
    if top.canonicalize().ok()? != Path::new(&manifest_dir).canonicalize().ok()? {
        return None;
    }
    // Rebuild when HEAD moves, watching only this branch's ref (not refs/heads as a whole,
    // or every commit on any branch of a shared repository would rebuild the crate).
    let git_dir = PathBuf::from(git(&["rev-parse", "--absolute-git-dir"])?);
    // A linked worktree keeps HEAD in its own git dir and branch refs in the common one.
    let common = PathBuf::from(git(&[
        "rev-parse",
        "--path-format=absolute",
        "--git-common-dir",
    ])?);
    watch(&git_dir.join("HEAD"));
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        let loose = common.join(&branch);
        if loose.exists() {
            watch(&loose);
        } else if let Some(parent) = loose.parent() {
            // A packed ref: a commit writes it loose again, into this directory.
            watch(parent);
        }
    }
    watch(&common.join("packed-refs"));
    git(&["rev-parse", "--short=12", "HEAD"])
}

/// Only existing paths: Cargo treats a missing one as changed and would rerun every build.
fn watch(path: &Path) {
    if path.exists() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}
