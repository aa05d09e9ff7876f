//! Direct TCP transport ([MS-SMB2] 2.1): each SMB2 message travels after a
//! 4-byte header, a zero byte and a 24-bit big-endian length.

use crate::DecodeError;

/// Length of the transport header.
pub const TRANSPORT_HEADER_LEN: usize = 4;
/// The largest message the 24-bit length can carry.
pub const MAX_MESSAGE_LEN: usize = 0x00FF_FFFF;

/// The message length a transport header announces.
///
/// # Errors
/// `Malformed` when the first byte is not zero (an SMB1 NetBIOS session
/// packet type, or not SMB at all).
pub fn message_len(h: [u8; TRANSPORT_HEADER_LEN]) -> Result<usize, DecodeError> {
    if h[0] != 0 {
        return Err(DecodeError::Malformed("transport header (first byte not zero)"));
    }
    Ok(usize::from(h[1]) << 16 | usize::from(h[2]) << 8 | usize::from(h[3]))
}

/// The transport header for a message of `len` bytes.
///
/// # Errors
/// `Unsupported` above [`MAX_MESSAGE_LEN`].
pub fn transport_header(len: usize) -> Result<[u8; TRANSPORT_HEADER_LEN], DecodeError> {
    if len > MAX_MESSAGE_LEN {
        return Err(DecodeError::Unsupported("message longer than 16 MiB"));
    }
    Ok([0, (len >> 16) as u8, (len >> 8) as u8, len as u8])
}

/// The first whole message in `buf` and how many bytes it took with its
/// transport header; `None` while more bytes are needed. `limit` caps what
/// a peer may announce (a larger length is refused before any is buffered).
///
/// # Errors
/// A bad transport header, or a length over `limit`.
pub fn next_message(buf: &[u8], limit: usize) -> Result<Option<(&[u8], usize)>, DecodeError> {
    let Some(h) = buf.first_chunk::<TRANSPORT_HEADER_LEN>() else {
        return Ok(None);
    };
    let len = message_len(*h)?;
    if len > limit {
        return Err(DecodeError::Unsupported("message longer than the negotiated limit"));
    }
    let end = TRANSPORT_HEADER_LEN + len;
    Ok(buf.get(TRANSPORT_HEADER_LEN..end).map(|m| (m, end)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_and_frames_split() {
        assert_eq!(transport_header(0xe2).unwrap(), [0, 0, 0, 0xe2]);
        assert_eq!(message_len([0, 1, 2, 3]).unwrap(), 0x010203);
        assert!(message_len([0x85, 0, 0, 0]).is_err(), "NetBIOS keep-alive is not SMB2");
        assert!(transport_header(MAX_MESSAGE_LEN + 1).is_err());
        let mut two = transport_header(3).unwrap().to_vec();
        two.extend_from_slice(b"abc");
        two.extend_from_slice(&transport_header(1).unwrap());
        assert_eq!(next_message(&two, 100).unwrap(), Some((&b"abc"[..], 7)));
        assert_eq!(next_message(&two[7..], 100).unwrap(), None, "body not there yet");
        assert_eq!(next_message(&two[..2], 100).unwrap(), None);
        assert!(next_message(&two, 2).is_err(), "over the limit");
    }
}
