//! Build-time facts for the test suite: whether a PostgreSQL test database, nginx and Node with
//! CleverTap's Node library (`tests/node`, installed by `npm ci`) are here, and whether a tmpfs
//! can be mounted (the disk-full test).
//! Tests that need them are compiled as `#[ignore]`d without them, so `cargo test` reports them
//! as ignored — never as passed. `.ci/run` provides both and runs every test.

use std::path::Path;
use std::process::{Command, Stdio};

fn main() {
    println!("cargo::rustc-check-cfg=cfg(freshtap_postgres)");
    println!("cargo::rustc-check-cfg=cfg(freshtap_nginx)");
    println!("cargo::rustc-check-cfg=cfg(freshtap_snakeoil)");
    println!("cargo::rustc-check-cfg=cfg(freshtap_node)");
    println!("cargo::rustc-check-cfg=cfg(freshtap_tmpfs)");
    println!("cargo::rerun-if-env-changed=FRESHTAP_TEST_DATABASE_URL");
    println!("cargo::rerun-if-env-changed=FRESHTAP_TEST_NGINX");
    println!("cargo::rerun-if-env-changed=PATH");
    println!("cargo::rerun-if-env-changed=FRESHTAP_TEST_NODE");
    // `npm ci` there adds node_modules/, which changes the directory.
    println!("cargo::rerun-if-changed=tests/node");
    if std::env::var("FRESHTAP_TEST_DATABASE_URL").is_ok_and(|url| !url.is_empty()) {
        println!("cargo::rustc-cfg=freshtap_postgres");
    }
    if nginx_found() {
        println!("cargo::rustc-cfg=freshtap_nginx");
    }
    if node_found() && Path::new("tests/node/node_modules/clevertap/package.json").is_file() {
        println!("cargo::rustc-cfg=freshtap_node");
    }
    // The disk-full test mounts a small tmpfs: it needs root (or CAP_SYS_ADMIN).
    if tmpfs_mountable() {
        println!("cargo::rustc-cfg=freshtap_tmpfs");
    }
    // Debian's self-signed server certificate, which the PostgreSQL TLS test trusts.
    let snakeoil = "/etc/ssl/certs/ssl-cert-snakeoil.pem";
    println!("cargo::rerun-if-changed={snakeoil}");
    if Path::new(snakeoil).is_file() {
        println!("cargo::rustc-cfg=freshtap_snakeoil");
    }
}

fn nginx_found() -> bool {
    if let Ok(path) = std::env::var("FRESHTAP_TEST_NGINX") {
        return Path::new(&path).is_file();
    }
    on_path("nginx") || Path::new("/usr/sbin/nginx").is_file()
}

/// `FRESHTAP_TEST_NODE` names the binary; else `node` on PATH.
fn node_found() -> bool {
    match std::env::var("FRESHTAP_TEST_NODE") {
        Ok(path) if !path.is_empty() => Path::new(&path).is_file(),
        _ => on_path("node"),
    }
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}

/// Whether this build may mount a tmpfs: tries one in OUT_DIR and unmounts it again.
fn tmpfs_mountable() -> bool {
    let Ok(out) = std::env::var("OUT_DIR") else {
        return false;
    };
    let probe = Path::new(&out).join("tmpfs-probe");
    if std::fs::create_dir_all(&probe).is_err() {
        return false;
    }
    let quiet = |command: &mut Command| {
        command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let mounted = quiet(
        Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
            .arg(&probe),
    );
    if mounted {
        quiet(Command::new("umount").arg(&probe));
    }
    mounted
}
