//! SPNEGO ([MS-SPNG], RFC 4178) as SMB2 carries NTLM: a negTokenInit that
//! offers NTLMSSP with its first message, then negTokenResp exchanges. Just
//! enough DER: definite lengths, the tags these tokens use.

use crate::DecodeError;

/// 1.3.6.1.5.5.2, the SPNEGO mechanism.
const SPNEGO_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x02];
/// 1.3.6.1.4.1.311.2.2.10, NTLMSSP.
pub const NTLMSSP_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x0a];

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    match content.len() {
        n if n < 0x80 => v.push(n as u8),
        n if n <= 0xff => v.extend_from_slice(&[0x81, n as u8]),
        n if n <= 0xffff => v.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]),
        n => v.extend_from_slice(&[0x83, (n >> 16) as u8, (n >> 8) as u8, n as u8]),
    }
    v.extend_from_slice(content);
    v
}

/// One DER element at the start of `b`: (tag, content, rest).
fn element(b: &[u8]) -> Result<(u8, &[u8], &[u8]), DecodeError> {
    let (&tag, rest) = b.split_first().ok_or(DecodeError::Truncated("DER tag"))?;
    let (&first, rest) = rest.split_first().ok_or(DecodeError::Truncated("DER length"))?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 3 || rest.len() < n {
            return Err(DecodeError::Malformed("DER length"));
        }
        (
            rest[..n].iter().fold(0usize, |a, &x| a << 8 | usize::from(x)),
            &rest[n..],
        )
    };
    if rest.len() < len {
        return Err(DecodeError::Truncated("DER content"));
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

/// The client's first token: negTokenInit offering NTLMSSP, with `mech_token`.
pub fn neg_token_init(mech_token: &[u8]) -> Vec<u8> {
    let mech_types = der(0xa0, &der(0x30, &der(0x06, NTLMSSP_OID)));
    let token = der(0xa2, &der(0x04, mech_token));
    let init = der(0xa0, &der(0x30, &[mech_types, token].concat()));
    der(0x60, &[der(0x06, SPNEGO_OID), init].concat())
}

/// The server's hint in NEGOTIATE: negTokenInit listing NTLMSSP, no token.
pub fn neg_token_init_hint() -> Vec<u8> {
    let mech_types = der(0xa0, &der(0x30, &der(0x06, NTLMSSP_OID)));
    let init = der(0xa0, &der(0x30, &mech_types));
    der(0x60, &[der(0x06, SPNEGO_OID), init].concat())
}

/// A later client token: negTokenResp carrying `response_token`.
pub fn neg_token_resp(response_token: &[u8]) -> Vec<u8> {
    der(0xa1, &der(0x30, &der(0xa2, &der(0x04, response_token))))
}

/// NegState of a negTokenResp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NegState {
    AcceptCompleted,
    AcceptIncomplete,
    Reject,
    RequestMic,
}

/// What a server's negTokenResp says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegTokenResp<'a> {
    pub state: Option<NegState>,
    pub supported_mech: Option<&'a [u8]>,
    pub response_token: Option<&'a [u8]>,
    pub mech_list_mic: Option<&'a [u8]>,
}

impl<'a> NegTokenResp<'a> {
    /// Parses a negTokenResp (`[1] SEQUENCE { … }`).
    ///
    /// # Errors
    /// Anything but a well-formed negTokenResp.
    pub fn parse(b: &'a [u8]) -> Result<NegTokenResp<'a>, DecodeError> {
        let (tag, body, _) = element(b)?;
        if tag != 0xa1 {
            return Err(DecodeError::Malformed("negTokenResp tag"));
        }
        let (tag, mut fields, _) = element(body)?;
        if tag != 0x30 {
            return Err(DecodeError::Malformed("negTokenResp sequence"));
        }
        let mut out = NegTokenResp {
            state: None,
            supported_mech: None,
            response_token: None,
            mech_list_mic: None,
        };
        while !fields.is_empty() {
            let (tag, inner, rest) = element(fields)?;
            fields = rest;
            let (itag, value, _) = element(inner)?;
            match (tag, itag) {
                (0xa0, 0x0a) => {
                    out.state = Some(match value {
                        [0] => NegState::AcceptCompleted,
                        [1] => NegState::AcceptIncomplete,
                        [2] => NegState::Reject,
                        [3] => NegState::RequestMic,
                        _ => return Err(DecodeError::Malformed("negState")),
                    })
                }
                (0xa1, 0x06) => out.supported_mech = Some(value),
                (0xa2, 0x04) => out.response_token = Some(value),
                (0xa3, 0x04) => out.mech_list_mic = Some(value),
                _ => return Err(DecodeError::Malformed("negTokenResp field")),
            }
        }
        Ok(out)
    }
}

/// What a client's negTokenInit offers (the server's side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegTokenInit<'a> {
    pub mech_types: Vec<&'a [u8]>,
    /// The mechTypes list as sent (its DER), which a mechListMIC covers.
    pub mech_types_der: &'a [u8],
    pub mech_token: Option<&'a [u8]>,
}

impl<'a> NegTokenInit<'a> {
    /// Parses `[APPLICATION 0] { SPNEGO OID, [0] negTokenInit }`.
    ///
    /// # Errors
    /// Anything but a well-formed negTokenInit for SPNEGO.
    pub fn parse(b: &'a [u8]) -> Result<NegTokenInit<'a>, DecodeError> {
        let (tag, body, _) = element(b)?;
        if tag != 0x60 {
            return Err(DecodeError::Malformed("GSS-API initial context token tag"));
        }
        let (tag, oid, rest) = element(body)?;
        if tag != 0x06 || oid != SPNEGO_OID {
            return Err(DecodeError::Unsupported("a mechanism other than SPNEGO"));
        }
        let (tag, init, _) = element(rest)?;
        if tag != 0xa0 {
            return Err(DecodeError::Malformed("negTokenInit tag"));
        }
        let (tag, mut fields, _) = element(init)?;
        if tag != 0x30 {
            return Err(DecodeError::Malformed("negTokenInit sequence"));
        }
        let mut out = NegTokenInit {
            mech_types: Vec::new(),
            mech_types_der: &[],
            mech_token: None,
        };
        while !fields.is_empty() {
            let (tag, inner, rest) = element(fields)?;
            fields = rest;
            match tag {
                0xa0 => {
                    let (t, mut list, after) = element(inner)?;
                    if t != 0x30 {
                        return Err(DecodeError::Malformed("mechTypes"));
                    }
                    out.mech_types_der = &inner[..inner.len() - after.len()];
                    while !list.is_empty() {
                        let (t, oid, rest) = element(list)?;
                        if t != 0x06 {
                            return Err(DecodeError::Malformed("mechType"));
                        }
                        out.mech_types.push(oid);
                        list = rest;
                    }
                }
                0xa2 => {
                    let (t, token, _) = element(inner)?;
                    if t != 0x04 {
                        return Err(DecodeError::Malformed("mechToken"));
                    }
                    out.mech_token = Some(token);
                }
                // reqFlags [1], mechListMIC [3]: not needed for NTLM.
                0xa1 | 0xa3 => {}
                _ => return Err(DecodeError::Malformed("negTokenInit field")),
            }
        }
        Ok(out)
    }
}

/// A server's negTokenResp: its state, the chosen mechanism, a token.
pub fn neg_token_resp_server(
    state: NegState,
    supported_mech: Option<&[u8]>,
    token: Option<&[u8]>,
    mech_list_mic: Option<&[u8]>,
) -> Vec<u8> {
    let code = match state {
        NegState::AcceptCompleted => 0,
        NegState::AcceptIncomplete => 1,
        NegState::Reject => 2,
        NegState::RequestMic => 3,
    };
    let mut fields = der(0xa0, &der(0x0a, &[code]));
    if let Some(m) = supported_mech {
        fields.extend_from_slice(&der(0xa1, &der(0x06, m)));
    }
    if let Some(t) = token {
        fields.extend_from_slice(&der(0xa2, &der(0x04, t)));
    }
    if let Some(m) = mech_list_mic {
        fields.extend_from_slice(&der(0xa3, &der(0x04, m)));
    }
    der(0xa1, &der(0x30, &fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_well_formed_der() {
        let t = neg_token_init(b"NTLMSSP\0abc");
        assert_eq!(&t[..2], &[0x60, t.len() as u8 - 2]);
        assert!(t.windows(NTLMSSP_OID.len()).any(|w| w == NTLMSSP_OID));
        let long = vec![7u8; 300];
        let r = neg_token_resp(&long);
        let (tag, body, rest) = element(&r).unwrap();
        assert_eq!((tag, rest.len()), (0xa1, 0));
        assert!(body.ends_with(&long));
        // A server's answer: accept-incomplete, NTLMSSP, a token.
        let resp = der(
            0xa1,
            &der(
                0x30,
                &[
                    der(0xa0, &der(0x0a, &[1])),
                    der(0xa1, &der(0x06, NTLMSSP_OID)),
                    der(0xa2, &der(0x04, b"tok")),
                ]
                .concat(),
            ),
        );
        let p = NegTokenResp::parse(&resp).unwrap();
        assert_eq!(p.state, Some(NegState::AcceptIncomplete));
        assert_eq!(p.supported_mech, Some(NTLMSSP_OID));
        assert_eq!(p.response_token, Some(&b"tok"[..]));
        for cut in 0..resp.len() {
            assert!(NegTokenResp::parse(&resp[..cut]).is_err() || cut == resp.len());
        }
    }

    #[test]
    fn the_server_side_reads_what_the_client_side_builds() {
        let init = neg_token_init(b"NTLMSSP\0first");
        let p = NegTokenInit::parse(&init).unwrap();
        assert_eq!(
            (p.mech_types, p.mech_token),
            (vec![NTLMSSP_OID], Some(&b"NTLMSSP\0first"[..]))
        );
        let resp = neg_token_resp_server(NegState::AcceptIncomplete, Some(NTLMSSP_OID), Some(b"chal"), None);
        let done = neg_token_resp_server(NegState::AcceptCompleted, None, None, Some(b"sixteen byte mic"));
        let r = NegTokenResp::parse(&done).unwrap();
        assert_eq!(
            (r.state, r.mech_list_mic),
            (Some(NegState::AcceptCompleted), Some(&b"sixteen byte mic"[..]))
        );
        let r = NegTokenResp::parse(&resp).unwrap();
        assert_eq!(
            (r.state, r.supported_mech, r.response_token),
            (Some(NegState::AcceptIncomplete), Some(NTLMSSP_OID), Some(&b"chal"[..]))
        );
        for cut in 0..init.len() {
            assert!(NegTokenInit::parse(&init[..cut]).is_err());
        }
    }
}
