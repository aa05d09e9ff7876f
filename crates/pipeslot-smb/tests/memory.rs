//! The client state machine in memory, against a scripted server built
//! from this crate's codecs and the same key derivations: no socket, no
//! clock, every byte in view. What a real server does is proven in
//! samba.rs; here every rule the client enforces is made to fire.

use pipeslot_smb::client::{Auth, ClientConfig, ClientError, Connection, Entropy, Handshake, Step, ALL_DIALECTS};
use pipeslot_smb::crypt::{self, Cipher, SessionCipher};
use pipeslot_smb::header::{flags, Command, Header, HeaderRepr, Target, HEADER_LEN};
use pipeslot_smb::negotiate::{
    capabilities, cipher, dialect, hash_algorithm, signing_algorithm, NegotiateContext, NegotiateResponse,
};
use pipeslot_smb::ntlm;
use pipeslot_smb::session::{session_flags, SessionSetupResponse};
use pipeslot_smb::signing::{self, Algorithm, PreauthHash};
use pipeslot_smb::spnego;
use pipeslot_smb::status::NtStatus;

const USER: &str = "alice";
const PASSWORD: &str = "correct horse";

fn config(require_encryption: bool) -> ClientConfig {
    ClientConfig {
        auth: Auth::Ntlm {
            user: USER.into(),
            domain: String::new(),
            nt_hash: ntlm::nt_hash(PASSWORD),
        },
        dialects: ALL_DIALECTS.to_vec(),
        require_signing: false,
        require_encryption,
        workstation: "MEM".into(),
        entropy: Entropy {
            client_guid: [1; 16],
            salt: [2; 32],
            client_challenge: [3; 8],
            nonce_prefix: [4; 4],
        },
        now: 0x01d9_0000_0000_0000,
    }
}

/// A response header answering `mid`.
fn answer(command: Command, mid: u64, status: NtStatus, credits: u16, session_id: u64) -> Vec<u8> {
    let mut h = HeaderRepr::request(command, mid, credits);
    h.flags = flags::SERVER_TO_REDIR;
    h.status = status;
    h.session_id = session_id;
    let mut b = vec![0u8; HEADER_LEN];
    h.emit((&mut b[..]).try_into().unwrap());
    b
}

fn unframe(f: &[u8]) -> &[u8] {
    let n = pipeslot_smb::transport::message_len([f[0], f[1], f[2], f[3]]).unwrap();
    assert_eq!(n, f.len() - 4);
    &f[4..]
}

fn challenge_message() -> Vec<u8> {
    let mut info = Vec::new();
    info.extend_from_slice(&ntlm::av::TIMESTAMP.to_le_bytes());
    info.extend_from_slice(&8u16.to_le_bytes());
    info.extend_from_slice(&0x01d9_1234_0000_0000u64.to_le_bytes());
    info.extend_from_slice(&[0, 0, 0, 0]);
    let mut m = ntlm::SIGNATURE.to_vec();
    m.extend_from_slice(&2u32.to_le_bytes());
    m.extend_from_slice(&[0, 0, 0, 0, 48, 0, 0, 0]);
    m.extend_from_slice(&(ntlm::flags::UNICODE | ntlm::flags::NTLM | ntlm::flags::TARGET_INFO).to_le_bytes());
    m.extend_from_slice(&[9, 8, 7, 6, 5, 4, 3, 2]);
    m.extend_from_slice(&[0; 8]);
    m.extend_from_slice(&(info.len() as u16).to_le_bytes());
    m.extend_from_slice(&(info.len() as u16).to_le_bytes());
    m.extend_from_slice(&48u32.to_le_bytes());
    m.extend_from_slice(&info);
    m
}

/// The scripted server: what it knows after the handshake.
struct Server {
    session_id: u64,
    sign: ([u8; 16], Algorithm),
    seal: Option<SessionCipher>,
}

const SID: u64 = 0x1122_3344;

/// Runs a whole 3.1.1 handshake; `encrypt` has the server ask for sealing.
fn logged_on(require: bool, encrypt: bool, final_flags: u16) -> Result<(Connection, Server), ClientError> {
    let (mut hs, first) = Handshake::start(config(require));
    let neg_req = unframe(&first).to_vec();
    let mut preauth = PreauthHash::default();
    // NEGOTIATE
    let mut neg = answer(Command::NEGOTIATE, 0, NtStatus::STATUS_SUCCESS, 1, 0);
    neg.extend_from_slice(
        &NegotiateResponse {
            security_mode: 1,
            dialect: dialect::SMB_3_1_1,
            server_guid: [0xaa; 16],
            capabilities: capabilities::LARGE_MTU | capabilities::ENCRYPTION,
            max_transact_size: 1 << 20,
            max_read_size: 1 << 20,
            max_write_size: 1 << 20,
            system_time: 0,
            server_start_time: 0,
            security_buffer: &[],
            contexts: vec![
                NegotiateContext::PreauthIntegrity {
                    hash_algorithms: vec![hash_algorithm::SHA_512],
                    salt: vec![5; 32],
                },
                NegotiateContext::Encryption {
                    ciphers: vec![cipher::AES_128_GCM],
                },
                NegotiateContext::Signing {
                    algorithms: vec![signing_algorithm::AES_CMAC],
                },
            ],
        }
        .emit_body(),
    );
    preauth.update(&neg_req);
    preauth.update(&neg);
    let Step::Send(f) = hs.receive(&neg)? else {
        panic!("a SESSION_SETUP")
    };
    let setup1 = unframe(&f).to_vec();
    preauth.update(&setup1);
    // SESSION_SETUP: the challenge
    let challenge = challenge_message();
    let mut more = answer(
        Command::SESSION_SETUP,
        1,
        NtStatus::STATUS_MORE_PROCESSING_REQUIRED,
        8,
        SID,
    );
    more.extend_from_slice(
        &SessionSetupResponse {
            session_flags: 0,
            security_buffer: &spnego::neg_token_resp(&challenge),
        }
        .emit_body(),
    );
    preauth.update(&more);
    let Step::Send(f) = hs.receive(&more)? else {
        panic!("the AUTHENTICATE")
    };
    let setup2 = unframe(&f).to_vec();
    assert_eq!(Header::new_checked(&setup2[..]).unwrap().session_id(), SID);
    preauth.update(&setup2);
    // The server's side of NTLMv2: the same key from the same inputs.
    let session_key = ntlm::authenticate(
        &ntlm::Challenge::parse(&challenge).unwrap(),
        USER,
        "",
        "MEM",
        &ntlm::nt_hash(PASSWORD),
        [3; 8],
        0,
    )
    .session_key;
    let key = signing::signing_key_311(&session_key, &preauth);
    let flags = final_flags | if encrypt { session_flags::ENCRYPT_DATA } else { 0 };
    let mut done = answer(Command::SESSION_SETUP, 2, NtStatus::STATUS_SUCCESS, 32, SID);
    done.extend_from_slice(
        &SessionSetupResponse {
            session_flags: flags,
            security_buffer: &[],
        }
        .emit_body(),
    );
    signing::sign(&mut done, &key, Algorithm::AesCmac);
    assert_eq!(hs.receive(&done)?, Step::Ready);
    let seal = (require || encrypt).then(|| SessionCipher::smb_311(Cipher::Aes128Gcm, &session_key, &preauth));
    Ok((
        hs.finish(),
        Server {
            session_id: SID,
            sign: (key, Algorithm::AesCmac),
            seal,
        },
    ))
}

impl Server {
    /// A signed READ answer carrying `data` for `mid`.
    fn read_answer(&self, mid: u64, credits: u16, data: &[u8]) -> Vec<u8> {
        let mut m = answer(Command::READ, mid, NtStatus::STATUS_SUCCESS, credits, self.session_id);
        m.extend_from_slice(&17u16.to_le_bytes());
        m.push(80);
        m.push(0);
        m.extend_from_slice(&(data.len() as u32).to_le_bytes());
        m.extend_from_slice(&[0; 8]);
        m.extend_from_slice(data);
        signing::sign(&mut m, &self.sign.0, self.sign.1);
        m
    }
}

#[test]
fn a_whole_handshake_gives_a_signing_session_with_the_servers_terms() {
    let (c, _) = logged_on(false, false, 0).unwrap();
    assert_eq!(c.info.dialect, dialect::SMB_3_1_1);
    assert_eq!((c.info.signing, c.info.encryption), (Some(Algorithm::AesCmac), None));
    assert_eq!(c.info.session_id, SID);
    assert_eq!(c.credits(), 1 + 8 + 32 - 2, "granted less what the two setups spent");
}

#[test]
fn answers_are_matched_checked_and_counted() {
    let (mut c, s) = logged_on(false, false, 0).unwrap();
    let out = c.request(Command::READ, 7, &[0; 49], 4096).unwrap();
    let req = unframe(&out.frame);
    let h = Header::new_checked(req).unwrap();
    assert_eq!(
        (h.message_id(), h.tree_id(), h.credit_charge()),
        (out.message_id, Some(7), 1)
    );
    assert!(signing::verify(req, &s.sign.0, s.sign.1), "requests are signed");
    let before = c.credits();
    let got = c.receive(&s.read_answer(out.message_id, 5, b"hello")).unwrap();
    assert_eq!(
        (got.len(), got[0].status, got[0].interim),
        (1, NtStatus::STATUS_SUCCESS, false)
    );
    assert_eq!(c.credits(), before + 5);
    assert_eq!(c.outstanding(), 0);
    // The same answer again answers nothing outstanding.
    let again = c.receive(&s.read_answer(out.message_id, 1, b"hello")).unwrap_err();
    assert_eq!(again, ClientError::Unsolicited(out.message_id));
}

#[test]
fn forged_unsigned_and_unasked_answers_are_refused() {
    let (mut c, s) = logged_on(false, false, 0).unwrap();
    let out = c.request(Command::READ, 1, &[0; 49], 10).unwrap();
    let mut forged = s.read_answer(out.message_id, 1, b"real");
    let at = forged.len() - 1;
    forged[at] ^= 1;
    assert_eq!(c.receive(&forged).unwrap_err(), ClientError::BadSignature);
    let mut unsigned = answer(Command::READ, out.message_id, NtStatus::STATUS_SUCCESS, 1, SID);
    unsigned.extend_from_slice(&[17, 0, 80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(c.receive(&unsigned).unwrap_err(), ClientError::Unsigned);
    // An interim answer needs no signature, and the final one still comes.
    let mut interim = answer(Command::READ, out.message_id, NtStatus::STATUS_PENDING, 1, SID);
    let mut h = HeaderRepr::parse(&Header::new_checked(&interim[..]).unwrap());
    h.target = Target::Async(99);
    h.emit((&mut interim[..HEADER_LEN]).try_into().unwrap());
    interim.extend_from_slice(&[9, 0, 0, 0, 0, 0, 0, 0, 0]);
    let r = c.receive(&interim).unwrap();
    assert!(r[0].interim && r[0].async_id == Some(99));
    assert_eq!(c.outstanding(), 1);
    assert_eq!(
        c.receive(&s.read_answer(out.message_id, 1, b"real")).unwrap()[0].message_id,
        out.message_id
    );
    assert_eq!(c.outstanding(), 0);
    let cancel = c.cancel(out.message_id, Some(99));
    let ch = Header::new_checked(unframe(&cancel)).unwrap();
    assert_eq!((ch.command(), ch.async_id()), (Command::CANCEL, Some(99)));
}

#[test]
fn credits_run_out_and_a_compound_answer_restores_them() {
    let (mut c, s) = logged_on(false, false, 0).unwrap();
    let mut ids = Vec::new();
    while let Ok(out) = c.request(Command::READ, 1, &[0; 49], 65536 * 2) {
        // A two-credit request takes two message ids.
        if let Some(last) = ids.last() {
            assert_eq!(out.message_id, last + 2);
        }
        ids.push(out.message_id);
    }
    assert!(ids.len() >= 10, "{} requests", ids.len());
    assert!(matches!(
        c.request(Command::READ, 1, &[0; 49], 65536 * 2),
        Err(ClientError::NoCredits(2))
    ));
    // Two answers chained in one frame (NextCommand), each signed.
    let mut a = s.read_answer(ids[0], 4, b"one");
    a.resize(a.len().next_multiple_of(8), 0);
    let next = a.len() as u32;
    a[20..24].copy_from_slice(&next.to_le_bytes());
    a[48..64].fill(0);
    signing::sign(&mut a, &s.sign.0, s.sign.1);
    let b = s.read_answer(ids[1], 4, b"two");
    let got = c.receive(&[a, b].concat()).unwrap();
    assert_eq!(
        got.iter().map(|r| r.message_id).collect::<Vec<_>>(),
        vec![ids[0], ids[1]]
    );
    assert!(c.request(Command::READ, 1, &[0; 49], 65536 * 2).is_ok());
}

#[test]
fn a_sealed_session_seals_every_request_and_refuses_clear_answers() {
    for (require, encrypt) in [(true, false), (false, true)] {
        let (mut c, s) = logged_on(require, encrypt, 0).unwrap();
        assert_eq!(c.info.encryption, Some(Cipher::Aes128Gcm));
        let keys = s.seal.as_ref().unwrap();
        let out = c.request(Command::WRITE, 1, b"secret payload", 0).unwrap();
        let sealed = unframe(&out.frame);
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        let plain = crypt::open(&keys.client_to_server, sealed).unwrap();
        assert_eq!(Header::new_checked(&plain[..]).unwrap().message_id(), out.message_id);
        let mut reply = answer(Command::WRITE, out.message_id, NtStatus::STATUS_SUCCESS, 1, SID);
        reply.extend_from_slice(&[17, 0, 0, 0, 14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(c.receive(&reply).unwrap_err(), ClientError::Unencrypted);
        let boxed = crypt::seal(&keys.server_to_client, &[8; 16], SID, &reply);
        assert_eq!(c.receive(&boxed).unwrap()[0].message_id, out.message_id);
    }
}

#[test]
fn guest_sessions_cannot_sign_so_requiring_protection_refuses_them() {
    let (c, _) = logged_on(false, false, session_flags::IS_GUEST).unwrap();
    assert!(c.info.guest && c.info.signing.is_none());
    assert!(matches!(
        logged_on(true, false, session_flags::IS_GUEST),
        Err(ClientError::EncryptionUnavailable(_))
    ));
}

#[test]
fn a_final_answer_signed_with_another_key_fails_the_log_on() {
    let (mut hs, _) = Handshake::start(config(false));
    let mut neg = answer(Command::NEGOTIATE, 0, NtStatus::STATUS_SUCCESS, 1, 0);
    neg.extend_from_slice(
        &NegotiateResponse {
            security_mode: 1,
            dialect: dialect::SMB_2_1,
            server_guid: [0; 16],
            capabilities: 0,
            max_transact_size: 65536,
            max_read_size: 65536,
            max_write_size: 65536,
            system_time: 0,
            server_start_time: 0,
            security_buffer: &[],
            contexts: vec![],
        }
        .emit_body(),
    );
    assert!(matches!(hs.receive(&neg).unwrap(), Step::Send(_)));
    let mut more = answer(
        Command::SESSION_SETUP,
        1,
        NtStatus::STATUS_MORE_PROCESSING_REQUIRED,
        1,
        SID,
    );
    more.extend_from_slice(
        &SessionSetupResponse {
            session_flags: 0,
            security_buffer: &spnego::neg_token_resp(&challenge_message()),
        }
        .emit_body(),
    );
    assert!(matches!(hs.receive(&more).unwrap(), Step::Send(_)));
    let mut done = answer(Command::SESSION_SETUP, 2, NtStatus::STATUS_SUCCESS, 1, SID);
    done.extend_from_slice(&[9, 0, 0, 0, 0, 0, 0, 0, 0]);
    signing::sign(&mut done, &[0x66; 16], Algorithm::HmacSha256);
    assert_eq!(hs.receive(&done).unwrap_err(), ClientError::BadSignature);
    // A dialect nobody offered is refused too.
    let (mut hs, _) = Handshake::start(ClientConfig {
        dialects: vec![dialect::SMB_3_1_1],
        ..config(false)
    });
    assert_eq!(hs.receive(&neg).unwrap_err(), ClientError::Dialect(dialect::SMB_2_1));
}

/// xorshift64*: a fixed sequence, so a failure replays.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    let mut m = base.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(4) {
            0 if !m.is_empty() => {
                let i = rng.below(m.len());
                m[i] ^= 1 << rng.below(8);
            }
            1 if !m.is_empty() => {
                let i = rng.below(m.len());
                m[i] = rng.next() as u8;
            }
            2 => m.truncate(rng.below(m.len() + 1)),
            _ => {
                let i = rng.below(m.len() + 1);
                m.splice(i..i, std::iter::repeat_n(rng.next() as u8, rng.below(16)));
            }
        }
    }
    m
}

/// A brief fuzz run on stable Rust (the libFuzzer targets need nightly):
/// mutated handshake answers and mutated signed or sealed answers never
/// panic, and nothing altered is ever accepted.
#[test]
fn mutated_answers_never_panic_and_never_get_through() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // The handshake, each answer mutated in turn.
    let challenge = challenge_message();
    let mut more = answer(
        Command::SESSION_SETUP,
        1,
        NtStatus::STATUS_MORE_PROCESSING_REQUIRED,
        8,
        SID,
    );
    more.extend_from_slice(
        &SessionSetupResponse {
            session_flags: 0,
            security_buffer: &spnego::neg_token_resp(&challenge),
        }
        .emit_body(),
    );
    for _ in 0..3000 {
        let (mut hs, _) = Handshake::start(config(false));
        let _ = hs.receive(&mutate(&mut rng, &more));
    }
    for sealed in [false, true] {
        let (mut c, s) = logged_on(sealed, false, 0).unwrap();
        for _ in 0..5000 {
            let out = c.request(Command::READ, 1, &[0; 49], 16).unwrap();
            let good = s.read_answer(out.message_id, 1, b"payload");
            let good = match &s.seal {
                Some(k) => crypt::seal(&k.server_to_client, &rng.next().to_le_bytes().repeat(2), SID, &good),
                None => good,
            };
            let bad = mutate(&mut rng, &good);
            match c.receive(&bad) {
                Ok(rs) if bad != good => {
                    // Only what the signature or the tag does not cover may
                    // differ: nothing, for a single answer.
                    panic!("an altered answer got through: {rs:?}");
                }
                _ => {}
            }
            // Keep the window open: answer the request for real.
            let _ = c.receive(&good);
        }
    }
}
