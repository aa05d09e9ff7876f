//! Samba's external named-pipe protocol ("named pipe auth", NPA): how smbd
//! hands a client's CREATE of `\pipe\NAME` on IPC$ to the process serving
//! the unix socket `<ncalrpc dir>/np/<name>`. smbd connects (as root, into a
//! root-only folder), sends a `named_pipe_auth_req` (an NDR structure behind
//! a big-endian length) naming the client's address and the logged-on user,
//! takes a fixed 36-byte reply saying what the pipe is, and then forwards the
//! data: in message mode each message as a little-endian u16 length and the
//! bytes, in byte mode the raw stream.
//!
//! What is read from the request: the addresses (the first, fixed part of
//! level 7) and the user's unix name (`auth_user_info_unix`, the last thing
//! in the request). Between them lie the security token and the user info,
//! whose layout changes between Samba versions; the unix name is found from
//! the end, by its shape, and both checks must agree with the lengths, or
//! the request is refused.

use crate::le;
use crate::DecodeError;

/// The request level smbd 4.17 (Debian 12) sends.
pub const LEVEL_7: u32 = 7;
/// The largest request accepted (smbd's are under 2 KiB).
pub const MAX_REQUEST: usize = 64 * 1024;
/// The largest message message mode can carry (its length is a u16).
pub const MAX_MESSAGE: usize = u16::MAX as usize;

/// What a `named_pipe_auth_req` says about the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpaRequest {
    pub level: u32,
    pub client_name: Option<String>,
    pub client_addr: Option<String>,
    pub client_port: u16,
    pub server_name: Option<String>,
    pub server_addr: Option<String>,
    pub server_port: u16,
    /// The unix account Samba mapped the logged-on user to (`DOMAIN\user`
    /// under winbind with a separator, else the bare name); None for a
    /// request without a session (which smbd does not send).
    pub unix_name: Option<String>,
}

/// Reads NDR32 little-endian, aligned as the whole request is (its 4-byte
/// length counts: alignment is from the start of the length field).
struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn align(&mut self, n: usize) {
        // `buf` starts 4 bytes into the NDR stream.
        let stream = self.at + 4;
        self.at += (n - stream % n) % n;
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let b = self
            .buf
            .get(self.at..self.at.saturating_add(n))
            .ok_or(DecodeError::Truncated(what))?;
        self.at += n;
        Ok(b)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1, "NPA request")?[0])
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        self.align(2);
        Ok(le::u16(self.take(2, "NPA request")?, 0))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        self.align(4);
        Ok(le::u32(self.take(4, "NPA request")?, 0))
    }

    /// A `[charset(UTF8|DOS),string] uint8 *`'s body: counts, the bytes
    /// with their NUL.
    fn string(&mut self) -> Result<String, DecodeError> {
        let (max, offset, actual) = (self.u32()?, self.u32()?, self.u32()?);
        if offset != 0 || actual > max || actual == 0 {
            return Err(DecodeError::Malformed("NPA string counts"));
        }
        let b = self.take(actual as usize, "NPA string")?;
        if b[b.len() - 1] != 0 {
            return Err(DecodeError::Malformed("NPA string without its NUL"));
        }
        Ok(String::from_utf8_lossy(&b[..b.len() - 1]).into_owned())
    }
}

/// The conformant varying string that ends exactly at `end` (at most 1 KiB
/// long): its start and text. The three counts before it must agree with
/// its length and sit 4-aligned in the stream.
fn string_ending_at(buf: &[u8], end: usize) -> Option<(usize, String)> {
    for n in 1..=end.min(1024) {
        let Some(text_at) = end.checked_sub(n) else { break };
        let Some(counts) = text_at.checked_sub(12) else { break };
        if (counts + 4) % 4 != 0 || buf[end - 1] != 0 {
            continue;
        }
        let (max, offset, actual) = (le::u32(buf, counts), le::u32(buf, counts + 4), le::u32(buf, counts + 8));
        if max as usize == n && offset == 0 && actual as usize == n && !buf[text_at..end - 1].contains(&0) {
            return Some((counts, String::from_utf8_lossy(&buf[text_at..end - 1]).into_owned()));
        }
    }
    None
}

/// The unix name, from the end: `auth_user_info_unix` is the request's last
/// element: two pointers, then the strings `unix_name` and
/// `sanitized_username`, padded to 4 between.
fn unix_name_from_end(buf: &[u8]) -> Option<String> {
    let (sanitized_at, _) = string_ending_at(buf, buf.len())?;
    // unix_name ends where padding (0..=3 zero bytes) before the next starts.
    let (name_at, name) = (0..=3).find_map(|pad| {
        let end = sanitized_at.checked_sub(pad)?;
        if buf[end..sanitized_at].iter().any(|b| *b != 0) {
            return None;
        }
        string_ending_at(buf, end)
    })?;
    // The two referents before it: non-null.
    let ptrs = name_at.checked_sub(8)?;
    (le::u32(buf, ptrs) != 0 && le::u32(buf, ptrs + 4) != 0).then_some(name)
}

impl NpaRequest {
    /// Parses a request without its 4-byte length.
    ///
    /// # Errors
    /// Not `NPAM`, a level other than 7, fields outside the request, or a
    /// session whose unix name cannot be found.
    pub fn parse(body: &[u8]) -> Result<NpaRequest, DecodeError> {
        if body.len() > MAX_REQUEST {
            return Err(DecodeError::Malformed("NPA request too long"));
        }
        let mut r = Reader { buf: body, at: 0 };
        if r.take(4, "NPA magic")? != b"NPAM" {
            return Err(DecodeError::Malformed("NPA magic"));
        }
        let level = r.u32()?;
        if level != LEVEL_7 || r.u32()? != level {
            return Err(DecodeError::Unsupported("NPA request level (7 is understood)"));
        }
        let _transport = r.u8()?;
        let client_name = r.u32()? != 0;
        let client_addr = r.u32()? != 0;
        let client_port = r.u16()?;
        let server_name = r.u32()? != 0;
        let server_addr = r.u32()? != 0;
        let server_port = r.u16()?;
        let session = r.u32()? != 0;
        let mut text = |present: bool| present.then(|| r.string()).transpose();
        let client_name = text(client_name)?;
        let client_addr = text(client_addr)?;
        let server_name = text(server_name)?;
        let server_addr = text(server_addr)?;
        let unix_name = match session {
            true => Some(unix_name_from_end(body).ok_or(DecodeError::Malformed("NPA session without a unix name"))?),
            false => None,
        };
        Ok(NpaRequest {
            level,
            client_name,
            client_addr,
            client_port,
            server_name,
            server_addr,
            server_port,
            unix_name,
        })
    }
}

/// `named_pipe_auth_rep` with its length: the pipe's type (message or
/// byte), its device state and allocation size, and the open's NTSTATUS
/// (0: opened; else smbd fails the client's CREATE with it).
pub fn reply(level: u32, message_mode: bool, status: u32) -> Vec<u8> {
    let mut r = Vec::with_capacity(40);
    r.extend_from_slice(&32u32.to_be_bytes());
    r.extend_from_slice(b"NPAM");
    r.extend_from_slice(&level.to_le_bytes());
    r.extend_from_slice(&level.to_le_bytes());
    r.extend_from_slice(&(if message_mode { 2u16 } else { 1 }).to_le_bytes());
    r.extend_from_slice(&0x05ffu16.to_le_bytes()); // device state: message read mode, blocking, endpoint
    r.extend_from_slice(&[0; 4]);
    r.extend_from_slice(&4096u64.to_le_bytes());
    r.extend_from_slice(&status.to_le_bytes());
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_is_36_bytes_behind_its_length() {
        let r = reply(7, true, 0);
        assert_eq!(r.len(), 36);
        assert_eq!(u32::from_be_bytes(r[..4].try_into().unwrap()), 32);
        assert_eq!(&r[4..8], b"NPAM");
        assert_eq!(u16::from_le_bytes([r[16], r[17]]), 2);
    }

    #[test]
    fn a_string_is_found_from_its_end_only_when_the_counts_agree() {
        // pointers, "ab\0" (3, 0, 3), pad, "cd\0".
        let mut b = vec![0u8; 4]; // stream offset 4: the body after the length
        b.extend_from_slice(&[1, 0, 2, 0, 2, 0, 2, 0]);
        for s in [&b"ab\0"[..], b"cd\0"] {
            while !(b.len() + 4).is_multiple_of(4) {
                b.push(0);
            }
            for n in [3u32, 0, 3] {
                b.extend_from_slice(&n.to_le_bytes());
            }
            b.extend_from_slice(s);
        }
        assert_eq!(unix_name_from_end(&b).as_deref(), Some("ab"));
        let n = b.len();
        b[n - 5] = 9; // sanitized's actual count now lies
        assert_eq!(unix_name_from_end(&b), None);
    }
}
