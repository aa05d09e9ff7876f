//! Win32 names (`pipeslot_proto::name`): any string either parses or is
//! refused with ERROR_INVALID_NAME, never a panic.
//!
//! Oracle: a parsed name prints to a full name that parses back to an equal
//! name with the same display spelling and folded form.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pipeslot_proto::{Name, Win32Error};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    match Name::parse(s) {
        Ok(Name::Pipe(p)) => {
            let again = match Name::parse(&p.to_string()) {
                Ok(Name::Pipe(q)) => q,
                other => panic!("{p} printed to something else: {other:?}"),
            };
            assert_eq!(again, p);
            assert_eq!(again.name(), p.name());
            assert_eq!(again.folded(), p.folded());
        }
        Ok(Name::Mailslot(m)) => {
            let again = match Name::parse(&m.to_string()) {
                Ok(Name::Mailslot(q)) => q,
                other => panic!("{m} printed to something else: {other:?}"),
            };
            assert_eq!(again, m);
            assert_eq!(again.path(), m.path());
        }
        Ok(_) => {}
        Err(e) => assert_eq!(e.code(), Win32Error::ERROR_INVALID_NAME),
    }
});
