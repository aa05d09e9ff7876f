//! The C example, compiled by the system's C compiler against the header
//! and the shared library of this build, run as its own processes.

use std::path::PathBuf;
use std::process::Command;

/// target/<profile>, where this build put libpipeslot_ffi.so.
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(|deps| deps.parent()).unwrap().to_path_buf()
}

#[test]
fn the_c_example_builds_against_the_header_and_runs() {
    let dir = env!("CARGO_MANIFEST_DIR");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    if Command::new(&cc).arg("--version").output().is_err() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "no C compiler ({cc}); CI must run this"
        );
        eprintln!("skipped: no C compiler ({cc})");
        return;
    }
    // `cargo test` links the tests with the rlib only; the shared library
    // is `cargo build`'s (scripts/test.sh builds first). Building it from
    // here would race the test run's own artifacts.
    let lib = lib_dir();
    if !lib.join("libpipeslot_ffi.so").exists() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{} has no libpipeslot_ffi.so: run `cargo build` first; CI must run this",
            lib.display()
        );
        eprintln!(
            "skipped: no libpipeslot_ffi.so in {} (run `cargo build` first)",
            lib.display()
        );
        return;
    }
    let work = std::env::temp_dir().join(format!("pipeslot-ffi-c-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    let exe = work.join("pipes");
    let out = Command::new(&cc)
        .args(["-std=c11", "-D_DEFAULT_SOURCE", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&exe)
        .arg(format!("{dir}/examples/c/pipes.c"))
        .arg(format!("-I{dir}/include"))
        .arg(format!("-L{}", lib.display()))
        .arg("-lpipeslot_ffi")
        .output()
        .unwrap();
    assert!(out.status.success(), "cc: {}", String::from_utf8_lossy(&out.stderr));
    let run = Command::new(&exe)
        .env("LD_LIBRARY_PATH", &lib)
        .env("PIPESLOT_DIR", work.join("ns"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(run.status.success(), "{text}{}", String::from_utf8_lossy(&run.stderr));
    let id = Command::new("id").arg("-un").output().unwrap();
    let user = String::from_utf8_lossy(&id.stdout).trim().to_owned();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_unstable();
    let mut want = vec![
        "client: the server answered pong".to_owned(),
        "client: read 5 bytes, ERROR_MORE_DATA".to_owned(),
        "client: the rest is ger answer".to_owned(),
        format!("server: a client connected, pid matches, user {user}"),
        "server: then ERROR_BROKEN_PIPE (109)".to_owned(),
        "closing it again: ERROR_INVALID_HANDLE".to_owned(),
        "mailslot: 1 message of 15 bytes waits".to_owned(),
        "mailslot: a 4-byte buffer gets ERROR_INSUFFICIENT_BUFFER".to_owned(),
        "mailslot: read hello, mailslot".to_owned(),
        "mailslot: then ERROR_SEM_TIMEOUT after its 1 s timeout".to_owned(),
    ];
    want.sort_unstable();
    assert_eq!(lines, want, "{text}");
    let _ = std::fs::remove_dir_all(&work);
}
