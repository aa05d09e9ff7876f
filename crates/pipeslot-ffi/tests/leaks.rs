//! In a process of its own (the handle table is global): every handle
//! closed is freed, whatever it was and however its calls ended.

use std::ffi::CString;

use pipeslot_ffi::*;

#[test]
fn closing_frees_every_kind_of_handle() {
    let dir = std::env::temp_dir().join(format!("pipeslot-ffi-leaks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::env::set_var("PIPESLOT_DIR", &dir);
    assert_eq!(open_handles(), 0);
    let pipe = CString::new(r"\\.\pipe\ffi-leaks").unwrap();
    let slot = CString::new(r"\\.\mailslot\ffi-leaks").unwrap();
    for _ in 0..200 {
        let (mut s, mut c, mut m, mut w) = (0, 0, 0, 0);
        // SAFETY: valid names and out-pointers.
        unsafe {
            assert_eq!(
                pipeslot_create_named_pipe(pipe.as_ptr(), PIPE_ACCESS_DUPLEX, 0, 1, 0, 0, 0, 0, &mut s),
                0
            );
            assert_eq!(
                pipeslot_create_file(pipe.as_ptr(), GENERIC_READ | GENERIC_WRITE, 0, &mut c),
                0
            );
            assert_eq!(pipeslot_create_mailslot(slot.as_ptr(), 0, 0, 0, &mut m), 0);
            assert_eq!(pipeslot_create_file(slot.as_ptr(), GENERIC_WRITE, 0, &mut w), 0);
        }
        assert_eq!(open_handles(), 4);
        // A failed call holds nothing either.
        assert_eq!(pipeslot_disconnect_named_pipe(c), 1, "ERROR_INVALID_FUNCTION");
        for h in [c, s, w, m] {
            assert_eq!(pipeslot_close_handle(h), 0);
        }
        assert_eq!(open_handles(), 0);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
