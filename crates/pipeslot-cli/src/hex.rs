//! `--hex`: messages given and printed as lowercase hex, for binary
//! protocols. Input may hold whitespace between digits (`05 00 0b 03`).

use std::io;

use pipeslot::Win32Error;

use crate::error::fail;

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Lowercase hex, two digits a byte.
pub(crate) fn encode(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 0x0f)]);
    }
    out
}

/// Decodes hex digits, ignoring ASCII whitespace.
///
/// # Errors
/// `ERROR_INVALID_PARAMETER (87)` for a character that is not a hex digit or
/// an odd number of digits.
pub(crate) fn decode(text: &[u8]) -> io::Result<Vec<u8>> {
    let shown = || String::from_utf8_lossy(text).into_owned();
    let mut out = Vec::with_capacity(text.len() / 2);
    let mut high: Option<u8> = None;
    for &c in text.iter().filter(|c| !c.is_ascii_whitespace()) {
        let v = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => {
                return Err(fail(
                    Win32Error::ERROR_INVALID_PARAMETER,
                    format!("{:?} is not hex: {:?} is not a hex digit", shown(), char::from(c)),
                ))
            }
        };
        match high.take() {
            Some(h) => out.push((h << 4) | v),
            None => high = Some(v),
        }
    }
    if high.is_some() {
        return Err(fail(
            Win32Error::ERROR_INVALID_PARAMETER,
            format!("{:?} is not hex: it has an odd number of digits", shown()),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_whitespace() {
        assert_eq!(encode(&[0x00, 0xff, 0x10, 0xab]), b"00ff10ab");
        assert_eq!(decode(b"00 FF\t10ab\n").unwrap(), vec![0x00, 0xff, 0x10, 0xab]);
        assert_eq!(decode(b"").unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn bad_hex_is_invalid_parameter() {
        for bad in [&b"abc"[..], b"zz", b"0x00"] {
            let e = decode(bad).unwrap_err();
            assert_eq!(pipeslot::Error::win32(&e), Some(Win32Error::ERROR_INVALID_PARAMETER));
        }
    }
}
