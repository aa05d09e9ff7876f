//! DCE/RPC over a pipe, as much as the interop tests say to srvsvc: a bind,
//! NetrServerGetInfo level 101, and its answer decoded (C706, MS-SRVS).
#![allow(dead_code)]

/// A DCE/RPC bind to srvsvc v3.0 over NDR (C706 12.6.4.3; MS-SRVS 1.9).
pub fn srvsvc_bind() -> Vec<u8> {
    let mut p = vec![5, 0, 11, 0x03, 0x10, 0, 0, 0];
    p.extend_from_slice(&72u16.to_le_bytes());
    p.extend_from_slice(&0u16.to_le_bytes());
    p.extend_from_slice(&1u32.to_le_bytes()); // call id
    p.extend_from_slice(&4280u16.to_le_bytes());
    p.extend_from_slice(&4280u16.to_le_bytes());
    p.extend_from_slice(&0u32.to_le_bytes());
    p.extend_from_slice(&[1, 0, 0, 0, 0, 0, 1, 0]);
    p.extend_from_slice(&[
        0xc8, 0x4f, 0x32, 0x4b, 0x70, 0x16, 0xd3, 0x01, 0x12, 0x78, 0x5a, 0x47, 0xbf, 0x6e, 0xe1, 0x88,
    ]);
    p.extend_from_slice(&[3, 0, 0, 0]);
    p.extend_from_slice(&[
        0x04, 0x5d, 0x88, 0x8a, 0xeb, 0x1c, 0xc9, 0x11, 0x9f, 0xe8, 0x08, 0x00, 0x2b, 0x10, 0x48, 0x60,
    ]);
    p.extend_from_slice(&[2, 0, 0, 0]);
    p
}

/// NetrServerGetInfo (opnum 21) for `\\server`, level 101, as call 2.
pub fn netr_server_get_info(server: &str) -> Vec<u8> {
    let name: Vec<u16> = server.encode_utf16().chain([0]).collect();
    let mut stub = Vec::new();
    stub.extend_from_slice(&0x0002_0000u32.to_le_bytes()); // unique pointer
    for n in [name.len() as u32, 0, name.len() as u32] {
        stub.extend_from_slice(&n.to_le_bytes()); // max count, offset, actual count
    }
    for c in &name {
        stub.extend_from_slice(&c.to_le_bytes());
    }
    stub.resize(stub.len().next_multiple_of(4), 0);
    stub.extend_from_slice(&101u32.to_le_bytes());
    let mut p = vec![5, 0, 0, 0x03, 0x10, 0, 0, 0]; // request, first|last
    p.extend_from_slice(&((24 + stub.len()) as u16).to_le_bytes());
    p.extend_from_slice(&0u16.to_le_bytes());
    p.extend_from_slice(&2u32.to_le_bytes()); // call id
    p.extend_from_slice(&(stub.len() as u32).to_le_bytes()); // alloc hint
    p.extend_from_slice(&0u16.to_le_bytes()); // context 0
    p.extend_from_slice(&21u16.to_le_bytes()); // opnum
    p.extend_from_slice(&stub);
    p
}

/// From a NetrServerGetInfo level-101 response: (platform id, server name).
pub fn decode_server_info_101(pdu: &[u8]) -> (u32, String) {
    assert_eq!((pdu[0], pdu[2]), (5, 2), "a DCE/RPC response");
    let stub = &pdu[24..];
    let u32_at = |at: usize| u32::from_le_bytes([stub[at], stub[at + 1], stub[at + 2], stub[at + 3]]);
    assert_eq!(u32_at(0), 101, "the union's level");
    // [4] referent, then SERVER_INFO_101: platform, name ptr, major, minor, type, comment ptr.
    let platform = u32_at(8);
    let (max, actual) = (u32_at(32), u32_at(40));
    assert!(actual <= max);
    let chars: Vec<u16> = (0..actual as usize)
        .map(|i| u16::from_le_bytes([stub[44 + 2 * i], stub[45 + 2 * i]]))
        .collect();
    let name = String::from_utf16(&chars).unwrap().trim_end_matches('\0').to_owned();
    (platform, name)
}
