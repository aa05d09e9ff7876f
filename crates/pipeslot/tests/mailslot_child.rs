//! Mailslot roles played by re-executed copies of this binary (see
//! `util::Peer::spawn_with`). Each is an ignored test that does nothing
//! unless the parent set `PIPESLOT_CHILD` to its name. Messages are reported
//! as `msg <text>` for UTF-8, `hex <hex>` otherwise.

use std::time::{Duration, Instant};

use pipeslot::blocking::{MailslotOptions, MailslotWriter};
use pipeslot::mailslot::embedded_receiver;
use pipeslot::Error;

use crate::util::{child_args, report};

fn args(role: &str) -> Option<Vec<String>> {
    (std::env::var("PIPESLOT_CHILD").ok()? == role)
        .then(child_args)
        .flatten()
}

fn err_name(e: &std::io::Error) -> String {
    Error::win32(e).and_then(|c| c.name()).unwrap_or("OTHER").to_owned()
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

fn report_message(m: &[u8]) {
    match std::str::from_utf8(m) {
        Ok(t) if !t.contains('\n') && !t.is_empty() => report(format!("msg {t}")),
        _ => report(format!("hex {}", hex(m))),
    }
}

/// Creates mailslot args[0] (max size args[1], "net" in args[2] for network
/// reception), reports "ready" (with the embedded receiver's address when
/// networked) or "error NAME", then reports every message until killed.
#[test]
#[ignore]
fn ms_reader() {
    let Some(a) = args("ms_reader") else { return };
    let max: u32 = a.get(1).and_then(|m| m.parse().ok()).unwrap_or(0);
    let network = a.get(2).map(String::as_str) == Some("net");
    let slot = match MailslotOptions::new()
        .max_message_size(max)
        .network(network)
        .create(&a[0])
    {
        Ok(s) => s,
        Err(e) => return report(format!("error {}", err_name(&e))),
    };
    if network {
        let until = Instant::now() + Duration::from_secs(5);
        let addr = loop {
            if let Some(st) = embedded_receiver() {
                break st.local_addr.to_string();
            }
            if Instant::now() > until {
                break "none".to_owned();
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        report(format!("ready {addr}"));
    } else {
        report("ready");
    }
    loop {
        match slot.read_message() {
            Ok(m) => report_message(&m),
            Err(e) => return report(format!("end {}", err_name(&e))),
        }
    }
}

/// Opens args[0] and writes args[1..] in order (a `hex:` prefix means bytes
/// given as hex); with `PIPESLOT_REPEAT=N,MS` writes them N times, MS apart.
/// Reports "sent" or "error NAME".
#[test]
#[ignore]
fn ms_writer() {
    let Some(a) = args("ms_writer") else { return };
    let (times, gap) = std::env::var("PIPESLOT_REPEAT")
        .ok()
        .and_then(|v| {
            let (n, ms) = v.split_once(',')?;
            Some((n.parse().ok()?, ms.parse().ok()?))
        })
        .unwrap_or((1u32, 0u64));
    let w = match MailslotWriter::open(&a[0]) {
        Ok(w) => w,
        Err(e) => return report(format!("error {}", err_name(&e))),
    };
    for round in 0..times {
        for m in &a[1..] {
            let bytes = match m.strip_prefix("hex:") {
                Some(h) => unhex(h),
                None => m.as_bytes().to_vec(),
            };
            if let Err(e) = w.write(&bytes) {
                return report(format!("error {}", err_name(&e)));
            }
        }
        if round + 1 < times {
            std::thread::sleep(Duration::from_millis(gap));
        }
    }
    report("sent");
}

/// A request/response client, as DsGetDcName is: creates network mailslot
/// args[0], then writes args[2] (hex) to args[1] once a second until a
/// message arrives in its mailslot (at most 30 times); reports "reply <hex>"
/// or "noreply".
#[test]
#[ignore]
fn ms_ask() {
    let Some(a) = args("ms_ask") else { return };
    let slot = match MailslotOptions::new()
        .network(true)
        .read_timeout(Duration::from_secs(1))
        .create(&a[0])
    {
        Ok(s) => s,
        Err(e) => return report(format!("error {}", err_name(&e))),
    };
    let w = match MailslotWriter::open(&a[1]) {
        Ok(w) => w,
        Err(e) => return report(format!("error {}", err_name(&e))),
    };
    let question = unhex(&a[2]);
    for _ in 0..30 {
        if let Err(e) = w.write(&question) {
            return report(format!("error {}", err_name(&e)));
        }
        if let Ok(m) = slot.read_message() {
            return report(format!("reply {}", hex(&m)));
        }
    }
    report("noreply");
}

/// Tries to create mailslot args[0]; reports "created" or "error NAME",
/// then holds it until killed.
#[test]
#[ignore]
fn ms_create() {
    let Some(a) = args("ms_create") else { return };
    match MailslotOptions::new().create(&a[0]) {
        Ok(_slot) => {
            report("created");
            std::thread::sleep(Duration::from_secs(60));
        }
        Err(e) => report(format!("error {}", err_name(&e))),
    }
}

/// One load writer: id args[1], args[2] messages to args[0]. Each message is
/// `id seq len sum` (fixed 24 bytes) followed by `len` payload bytes, sum
/// being a checksum of the payload.
#[test]
#[ignore]
fn ms_load_writer() {
    let Some(a) = args("ms_load_writer") else { return };
    let id: u32 = a[1].parse().unwrap();
    let count: u32 = a[2].parse().unwrap();
    let w = match MailslotWriter::open(&a[0]) {
        Ok(w) => w,
        Err(e) => return report(format!("error {}", err_name(&e))),
    };
    let mut msg = Vec::new();
    for seq in 0..count {
        load_message(id, seq, &mut msg);
        if let Err(e) = w.write(&msg) {
            return report(format!("error {} at {seq}", err_name(&e)));
        }
    }
    report("sent");
}

/// Builds load message `seq` of writer `id` into `out`.
pub fn load_message(id: u32, seq: u32, out: &mut Vec<u8>) {
    let big = match seq % 97 {
        0 => 8000, // now and then a long one
        _ => 0,
    };
    let len = (seq.wrapping_mul(2_654_435_761) >> 20) % 512 + big;
    out.clear();
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    let start = out.len() + 12;
    out.extend_from_slice(&[0; 12]);
    let mut x = id.wrapping_mul(31).wrapping_add(seq).wrapping_mul(0x9e37_79b9) | 1;
    for _ in 0..len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        out.push(x as u8);
    }
    let sum = checksum(&out[start..]);
    out[start - 12..start - 4].copy_from_slice(&sum.to_le_bytes());
    out[start - 4..start].copy_from_slice(&0x5eed_u32.to_le_bytes());
}

/// FNV-1a over `b`.
pub fn checksum(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| {
        (h ^ u64::from(x)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Checks one load message; returns (id, seq).
pub fn check_load_message(m: &[u8]) -> Result<(u32, u32), String> {
    if m.len() < 24 {
        return Err(format!("a message of {} bytes is too short", m.len()));
    }
    let word = |i: usize| u32::from_le_bytes(m[i..i + 4].try_into().unwrap());
    let (id, seq, len) = (word(0), word(4), word(8) as usize);
    let sum = u64::from_le_bytes(m[12..20].try_into().unwrap());
    if word(20) != 0x5eed || m.len() != 24 + len {
        return Err(format!(
            "writer {id} message {seq}: torn ({} bytes, header says {})",
            m.len(),
            24 + len
        ));
    }
    if checksum(&m[24..]) != sum {
        return Err(format!("writer {id} message {seq}: checksum mismatch"));
    }
    Ok((id, seq))
}
