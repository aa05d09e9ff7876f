//! The checked-in header is what cbindgen makes of the crate now, so C
//! callers and the ABI cannot drift apart. `PIPESLOT_BLESS=1` rewrites it.

#[test]
fn the_checked_in_header_is_the_generated_one() {
    let dir = env!("CARGO_MANIFEST_DIR");
    let config = cbindgen::Config::from_file(format!("{dir}/cbindgen.toml")).unwrap();
    let mut made = Vec::new();
    cbindgen::Builder::new()
        .with_crate(dir)
        .with_config(config)
        .generate()
        .expect("cbindgen reads the crate")
        .write(&mut made);
    let path = format!("{dir}/include/pipeslot.h");
    if std::env::var_os("PIPESLOT_BLESS").is_some() {
        std::fs::write(&path, &made).unwrap();
    }
    let have = std::fs::read(&path).unwrap_or_default();
    assert!(
        have == made,
        "include/pipeslot.h is not what cbindgen makes of the crate; run \
         PIPESLOT_BLESS=1 cargo test -p pipeslot-ffi --test header"
    );
    let text = String::from_utf8(made).unwrap();
    for call in [
        "pipeslot_create_named_pipe",
        "pipeslot_read_file",
        "pipeslot_create_mailslot",
        "pipeslot_last_error_message",
    ] {
        assert!(text.contains(call), "{call} is in the header");
    }
}
