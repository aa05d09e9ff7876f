//! SMB 3.x encryption ([MS-SMB2] 2.2.41, 3.1.4.3, 3.2.5.3.1): a whole
//! message sealed with AES-CCM or AES-GCM behind a 52-byte TRANSFORM_HEADER.
//! The AEAD tag is the header's signature; the header from its nonce on is
//! the associated data. Primitives from RustCrypto.

use aes::{Aes128, Aes256};
use aes_gcm::aead::consts::{U11, U16};
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes128Gcm, Aes256Gcm};
use ccm::Ccm;

use crate::header::TRANSFORM_ID;
use crate::le;
use crate::negotiate::cipher;
use crate::signing::{kdf, kdf_256, PreauthHash};
use crate::DecodeError;

/// Length of the TRANSFORM_HEADER.
pub const TRANSFORM_LEN: usize = 52;
/// Where the associated data starts (the nonce).
const AAD_FROM: usize = 20;
/// Flags/EncryptionAlgorithm: "encrypted" (3.1.1) / AES-128-CCM (3.0).
const ENCRYPTED: u16 = 0x0001;

/// A negotiated cipher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cipher {
    Aes128Ccm,
    Aes128Gcm,
    Aes256Ccm,
    Aes256Gcm,
}

impl Cipher {
    /// From its id in the encryption negotiate context.
    pub fn from_id(id: u16) -> Option<Cipher> {
        Some(match id {
            cipher::AES_128_CCM => Cipher::Aes128Ccm,
            cipher::AES_128_GCM => Cipher::Aes128Gcm,
            cipher::AES_256_CCM => Cipher::Aes256Ccm,
            cipher::AES_256_GCM => Cipher::Aes256Gcm,
            _ => return None,
        })
    }

    /// How many nonce bytes the cipher uses (the rest of the field is zero).
    pub fn nonce_len(self) -> usize {
        match self {
            Cipher::Aes128Ccm | Cipher::Aes256Ccm => 11,
            Cipher::Aes128Gcm | Cipher::Aes256Gcm => 12,
        }
    }

    fn wide(self) -> bool {
        matches!(self, Cipher::Aes256Ccm | Cipher::Aes256Gcm)
    }
}

/// One direction's key: 16 or 32 bytes, as the cipher wants.
#[derive(Clone, PartialEq, Eq)]
pub struct CipherKey {
    pub cipher: Cipher,
    bytes: [u8; 32],
}

impl std::fmt::Debug for CipherKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CipherKey({:?}, <secret>)", self.cipher)
    }
}

impl CipherKey {
    fn derive(cipher: Cipher, session_key: &[u8], label: &[u8], context: &[u8]) -> CipherKey {
        let mut bytes = [0u8; 32];
        if cipher.wide() {
            bytes = kdf_256(session_key, label, context);
        } else {
            bytes[..16].copy_from_slice(&kdf(session_key, label, context));
        }
        CipherKey { cipher, bytes }
    }

    fn key(&self) -> &[u8] {
        if self.cipher.wide() {
            &self.bytes
        } else {
            &self.bytes[..16]
        }
    }
}

/// The two keys of a session, named from the client's side: `client_to_server`
/// seals what the client sends (the server's decryption key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionCipher {
    pub client_to_server: CipherKey,
    pub server_to_client: CipherKey,
}

impl SessionCipher {
    /// SMB 3.1.1 keys (3.2.5.3.1): from the session key and the preauth hash.
    pub fn smb_311(cipher: Cipher, session_key: &[u8], preauth: &PreauthHash) -> SessionCipher {
        SessionCipher {
            client_to_server: CipherKey::derive(cipher, session_key, b"SMBC2SCipherKey\0", &preauth.0),
            server_to_client: CipherKey::derive(cipher, session_key, b"SMBS2CCipherKey\0", &preauth.0),
        }
    }

    /// SMB 3.0 / 3.0.2 keys: AES-128-CCM, fixed labels.
    pub fn smb_30(session_key: &[u8]) -> SessionCipher {
        SessionCipher {
            client_to_server: CipherKey::derive(Cipher::Aes128Ccm, session_key, b"SMB2AESCCM\0", b"ServerIn \0"),
            server_to_client: CipherKey::derive(Cipher::Aes128Ccm, session_key, b"SMB2AESCCM\0", b"ServerOut\0"),
        }
    }
}

/// Seals `msg` (one SMB2 message or a compound chain) for `session_id` with
/// `nonce` (at least the cipher's nonce length; it must never repeat under
/// one key): the TRANSFORM_HEADER followed by the ciphertext.
///
/// # Panics
/// When `nonce` is shorter than the cipher's nonce.
pub fn seal(key: &CipherKey, nonce: &[u8], session_id: u64, msg: &[u8]) -> Vec<u8> {
    let n = key.cipher.nonce_len();
    let mut out = Vec::with_capacity(TRANSFORM_LEN + msg.len());
    out.extend_from_slice(&TRANSFORM_ID);
    out.extend_from_slice(&[0; 16]);
    out.extend_from_slice(&nonce[..n]);
    out.resize(36, 0);
    out.extend_from_slice(&(msg.len() as u32).to_le_bytes());
    out.extend_from_slice(&[0; 2]);
    out.extend_from_slice(&ENCRYPTED.to_le_bytes());
    out.extend_from_slice(&session_id.to_le_bytes());
    out.extend_from_slice(msg);
    let (head, body) = out.split_at_mut(TRANSFORM_LEN);
    let tag = aead(key, |c| c.seal(&head[AAD_FROM..AAD_FROM + n], &head[AAD_FROM..], body))
        .expect("sealing a message under 16 MiB");
    head[4..20].copy_from_slice(&tag);
    out
}

/// A sealed message's session id, read before choosing a key.
///
/// # Errors
/// Not a TRANSFORM_HEADER.
pub fn transform_session_id(frame: &[u8]) -> Result<u64, DecodeError> {
    if frame.len() < TRANSFORM_LEN || frame[..4] != TRANSFORM_ID {
        return Err(DecodeError::Truncated("TRANSFORM_HEADER"));
    }
    Ok(le::u64(frame, 44))
}

/// Opens a sealed frame: the plaintext message(s).
///
/// # Errors
/// A short or inconsistent header, or a tag that does not verify (a forged
/// or damaged message, or the wrong key).
pub fn open(key: &CipherKey, frame: &[u8]) -> Result<Vec<u8>, DecodeError> {
    transform_session_id(frame)?;
    let size = le::u32(frame, 36) as usize;
    if le::u16(frame, 42) != ENCRYPTED {
        return Err(DecodeError::Unsupported("TRANSFORM_HEADER flags"));
    }
    if size != frame.len() - TRANSFORM_LEN {
        return Err(DecodeError::Malformed("TRANSFORM_HEADER OriginalMessageSize"));
    }
    let n = key.cipher.nonce_len();
    let mut tag = [0u8; 16];
    tag.copy_from_slice(&frame[4..20]);
    let mut body = frame[TRANSFORM_LEN..].to_vec();
    let head = &frame[..TRANSFORM_LEN];
    aead(key, |c| {
        c.open(&head[AAD_FROM..AAD_FROM + n], &head[AAD_FROM..], &mut body, &tag)
    })
    .map_err(|()| DecodeError::Malformed("encrypted message (authentication failed)"))?;
    Ok(body)
}

/// The four AEADs behind one interface.
trait Aead16 {
    fn seal(&self, nonce: &[u8], aad: &[u8], buf: &mut [u8]) -> Result<[u8; 16], ()>;
    fn open(&self, nonce: &[u8], aad: &[u8], buf: &mut [u8], tag: &[u8; 16]) -> Result<(), ()>;
}

macro_rules! aead16 {
    ($t:ty) => {
        impl Aead16 for $t {
            fn seal(&self, nonce: &[u8], aad: &[u8], buf: &mut [u8]) -> Result<[u8; 16], ()> {
                let tag = self
                    .encrypt_in_place_detached(nonce.into(), aad, buf)
                    .map_err(drop)?;
                Ok(tag.into())
            }
            fn open(&self, nonce: &[u8], aad: &[u8], buf: &mut [u8], tag: &[u8; 16]) -> Result<(), ()> {
                self.decrypt_in_place_detached(nonce.into(), aad, buf, tag.into())
                    .map_err(drop)
            }
        }
    };
}

aead16!(Aes128Gcm);
aead16!(Aes256Gcm);
aead16!(Ccm<Aes128, U16, U11>);
aead16!(Ccm<Aes256, U16, U11>);

fn aead<T>(key: &CipherKey, f: impl FnOnce(&dyn Aead16) -> Result<T, ()>) -> Result<T, ()> {
    let k = key.key();
    match key.cipher {
        Cipher::Aes128Gcm => f(&Aes128Gcm::new_from_slice(k).map_err(drop)?),
        Cipher::Aes256Gcm => f(&Aes256Gcm::new_from_slice(k).map_err(drop)?),
        Cipher::Aes128Ccm => f(&Ccm::<Aes128, U16, U11>::new_from_slice(k).map_err(drop)?),
        Cipher::Aes256Ccm => f(&Ccm::<Aes256, U16, U11>::new_from_slice(k).map_err(drop)?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cipher_seals_and_opens_and_refuses_a_flipped_bit() {
        let mut preauth = PreauthHash::default();
        preauth.update(b"negotiate");
        for c in [
            Cipher::Aes128Ccm,
            Cipher::Aes128Gcm,
            Cipher::Aes256Ccm,
            Cipher::Aes256Gcm,
        ] {
            let keys = SessionCipher::smb_311(c, &[3; 16], &preauth);
            assert_ne!(keys.client_to_server, keys.server_to_client);
            let msg = b"\xfeSMB a message that needs to stay secret".to_vec();
            let sealed = seal(&keys.client_to_server, &[9; 16], 0x1234, &msg);
            assert_eq!(sealed.len(), TRANSFORM_LEN + msg.len());
            assert_eq!(transform_session_id(&sealed).unwrap(), 0x1234);
            assert!(!sealed.windows(6).any(|w| w == b"secret"));
            assert_eq!(open(&keys.client_to_server, &sealed).unwrap(), msg);
            assert!(
                open(&keys.server_to_client, &sealed).is_err(),
                "the other direction's key"
            );
            for at in [4, 25, 40, 60] {
                let mut bad = sealed.clone();
                bad[at] ^= 1;
                assert!(open(&keys.client_to_server, &bad).is_err(), "bit at {at}");
            }
            assert!(open(&keys.client_to_server, &sealed[..51]).is_err());
        }
        let k30 = SessionCipher::smb_30(&[1; 16]);
        assert_eq!(k30.client_to_server.cipher, Cipher::Aes128Ccm);
    }
}
