//! The Samba mode's decoder of smbd's `named_pipe_auth_req`
//! (`pipeslot_smb::npa`): any bytes, as a request body.
//!
//! Oracle: nothing panics; a request that parses names a level of 7, and a
//! unix name (when there is one) without a NUL in it.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pipeslot_smb::npa::NpaRequest;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = NpaRequest::parse(data) {
        assert_eq!(r.level, 7);
        if let Some(name) = r.unix_name {
            assert!(!name.contains('\0'));
        }
    }
});
