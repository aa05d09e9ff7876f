//! Remote mailslots: the datagrams our writers send (decoded by our codec and
//! by tshark), size rules, the receiver's delivery and drop counting, and a
//! broadcast across three hosts (network namespaces on a bridge).

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::Command;
use std::time::Duration;

use pipeslot::blocking::{MailslotOptions, MailslotWriter};
use pipeslot::mailslot::{embedded_receiver, DatagramReceiver, DropCause, NetConfig, Verdict, WriteShape};
use pipeslot::Win32Error;
use pipeslot_proto::wire::mailslot::MailslotDatagramRepr;
use pipeslot_proto::wire::netbios::DatagramType;

use crate::mailslot_child::hex;
use crate::mailslot_local::slot_name;
use crate::netns::{self, Lab};
use crate::util::{self, assert_win32, Peer, SECOND};

/// A UDP socket on loopback standing in for a remote host, and a config
/// whose writes go to it.
fn capture() -> (UdpSocket, NetConfig) {
    util::init();
    let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    sock.set_read_timeout(Some(5 * SECOND)).unwrap();
    let mut cfg = NetConfig::from_env().unwrap();
    cfg.port(sock.local_addr().unwrap().port())
        .bind(Ipv4Addr::LOCALHOST)
        .broadcast(vec![Ipv4Addr::LOCALHOST])
        .workgroup("PSLAB")
        .computer_name("PSWRITER");
    (sock, cfg)
}

fn receive(sock: &UdpSocket) -> Vec<u8> {
    let mut buf = [0u8; 2048];
    let (n, _) = sock.recv_from(&mut buf).expect("our datagram arrives");
    buf[..n].to_vec()
}

/// The key=value lines `tshark-decode.sh` prints for `payload`, or `None`
/// when tshark is missing (a skip outside CI, a failure under CI=true).
fn tshark_decode(payload: &[u8], port: u16) -> Option<Vec<(String, String)>> {
    if !netns::have_tool("tshark oracle", "tshark", "tshark") {
        return None;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/tshark-decode.sh");
    let dir = util::root().join("tshark");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{}.hex", hex(&payload[..16.min(payload.len())])));
    std::fs::write(&file, hex(payload)).unwrap();
    let out = Command::new("bash")
        .arg(script)
        .arg(&file)
        .arg(port.to_string())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "tshark sees no complete mailslot write: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(
        text.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    )
}

fn field<'a>(fields: &'a [(String, String)], key: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("tshark printed no {key}"))
}

#[test]
fn a_host_write_is_a_windows_shaped_direct_unique_datagram() {
    let (sock, cfg) = capture();
    let w = MailslotWriter::open_with(r"\\127.0.0.1\mailslot\pipeslot\demo", &cfg).unwrap();
    assert!(w.is_remote());
    // [MS-MAIL] <2>: 432 − roundup4(len("pipeslot\demo") = 13) = 416
    assert_eq!(w.max_message_size(), 416);
    w.write(b"Hello, mailslot!\0").unwrap();
    let payload = receive(&sock);
    let d = MailslotDatagramRepr::parse(&payload).expect("our codec decodes what we send");
    assert_eq!(d.datagram.msg_type, DatagramType::DIRECT_UNIQUE);
    assert_eq!(d.datagram.flags.0, 0x0e, "F set, H-node, as Windows");
    assert_eq!(d.datagram.source_ip, Ipv4Addr::LOCALHOST);
    assert_eq!(d.datagram.source_port, cfg.port);
    assert_eq!(d.datagram.source_name.to_string(), "PSWRITER<00>");
    assert_eq!(d.datagram.destination_name.to_string(), "127.0.0.1<00>");
    assert_eq!(d.write.name, r"\MAILSLOT\pipeslot\demo");
    assert_eq!(&*d.write.data, b"Hello, mailslot!\0");
    assert_eq!(d.write.shape, WriteShape::WINDOWS);
    assert_eq!((d.write.priority, d.write.class), (0, 2));

    let Some(t) = tshark_decode(&payload, cfg.port) else {
        return;
    };
    assert_eq!(field(&t, "nbdgm.type"), "16");
    assert_eq!(field(&t, "nbdgm.src"), "PSWRITER<00>");
    assert_eq!(field(&t, "mailslot.name"), r"\MAILSLOT\pipeslot\demo");
    assert_eq!(field(&t, "mailslot.opcode"), "1");
    assert_eq!(field(&t, "mailslot.class"), "2");
    assert_eq!(field(&t, "smb.trans_flags"), "0x0002");
    assert_eq!(field(&t, "smb.pid"), "65279");
    assert_eq!(field(&t, "data.hex"), hex(b"Hello, mailslot!\0"));
}

#[test]
fn a_broadcast_write_is_direct_group_to_the_workgroup_up_to_424_bytes() {
    let (sock, cfg) = capture();
    let w = MailslotWriter::open_with(r"\\*\mailslot\ps\big", &cfg).unwrap();
    assert_eq!(w.max_message_size(), 424);
    let big: Vec<u8> = (0..424usize).map(|i| ((i * 7 + 3) & 0xff) as u8).collect();
    w.write(&big).unwrap();
    let payload = receive(&sock);
    assert_eq!(payload.len() - 82, 512, "the SMB part is Windows' maximum");
    let d = MailslotDatagramRepr::parse(&payload).unwrap();
    assert_eq!(d.datagram.msg_type, DatagramType::DIRECT_GROUP);
    assert_eq!(d.datagram.destination_name.to_string(), "PSLAB<00>");
    assert_eq!(&*d.write.data, &big[..]);
    let e = w.write(&[0; 425]).unwrap_err();
    assert_eq!(util::code(&e), Some(Win32Error::ERROR_BAD_NETPATH));
    assert!(e.to_string().contains(r"\\*\mailslot\ps\big"), "{e}");

    // The workgroup by name is a domain too: Direct Group, same limit.
    let d2 = MailslotWriter::open_with(r"\\pslab\mailslot\ps\big", &cfg).unwrap();
    assert_win32(d2.write(&[0; 425]), Win32Error::ERROR_BAD_NETPATH);
    d2.write(b"domain").unwrap();
    let got = receive(&sock);
    let d = MailslotDatagramRepr::parse(&got).unwrap();
    assert_eq!(d.datagram.msg_type, DatagramType::DIRECT_GROUP);
    assert_eq!(d.datagram.destination_name.to_string(), "PSLAB<00>");

    let Some(t) = tshark_decode(&payload, cfg.port) else {
        return;
    };
    assert_eq!(field(&t, "nbdgm.type"), "17");
    assert_eq!(field(&t, "nbdgm.dst"), "PSLAB<00>");
    assert_eq!(field(&t, "smb.dc"), "424");
    assert_eq!(field(&t, "mailslot.name"), r"\MAILSLOT\ps\big");
}

#[test]
fn remote_size_rules_and_the_samba_shape() {
    let (sock, mut cfg) = capture();
    // 432 − roundup4(len("abcde") = 5) = 424 to one host; a longer path less.
    let w = MailslotWriter::open_with(r"\\127.0.0.1\mailslot\abcde", &cfg).unwrap();
    assert_eq!(w.max_message_size(), 424);
    let long = MailslotWriter::open_with(r"\\127.0.0.1\mailslot\a-rather-long-path\name", &cfg).unwrap();
    assert_eq!(long.max_message_size(), 432 - 24);
    assert_win32(long.write(&[1; 409]), Win32Error::ERROR_BAD_NETPATH);
    long.write(&[1; 408]).unwrap();
    assert_eq!(receive(&sock).len() - 82, 512);
    // A zero-length remote write is a datagram too.
    w.write(b"").unwrap();
    let got = receive(&sock);
    let d = MailslotDatagramRepr::parse(&got).unwrap();
    assert!(d.write.data.is_empty());

    cfg.shape(WriteShape::SAMBA);
    let s = MailslotWriter::open_with(r"\\127.0.0.1\mailslot\pipeslot\demo", &cfg).unwrap();
    s.write(b"samba").unwrap();
    let payload = receive(&sock);
    let d = MailslotDatagramRepr::parse(&payload).unwrap();
    assert_eq!(d.write.shape, WriteShape::SAMBA);
    assert_eq!(
        d.write.data_offset(),
        70 + r"\MAILSLOT\pipeslot\demo".len(),
        "no padding"
    );
    if let Some(t) = tshark_decode(&payload, cfg.port) {
        assert_eq!(field(&t, "smb.timeout"), "1000");
    }
    // Non-ASCII names cannot travel (the protocol carries OEM names).
    assert_win32(
        MailslotWriter::open_with(r"\\127.0.0.1\mailslot\straße", &cfg),
        Win32Error::ERROR_INVALID_NAME,
    );
    // No broadcast address: a group write cannot go anywhere.
    cfg.broadcast(Vec::new());
    assert_win32(
        MailslotWriter::open_with(r"\\*\mailslot\x", &cfg),
        Win32Error::ERROR_BAD_NETPATH,
    );
}

fn vector(file: &str) -> Vec<u8> {
    let path = format!(
        "{}/../pipeslot-proto/testdata/mailslot/{file}.hex",
        env!("CARGO_MANIFEST_DIR")
    );
    crate::mailslot_child::unhex(std::fs::read_to_string(path).unwrap().trim())
}

#[test]
fn the_receiver_delivers_by_name_and_counts_what_it_drops() {
    util::init();
    let slot = MailslotOptions::new()
        .network(true)
        .max_message_size(64)
        .read_timeout(Duration::from_secs(5))
        .create(r"\\.\mailslot\pipeslot\demo")
        .unwrap();
    let local_only = MailslotOptions::new()
        .read_timeout(Duration::ZERO)
        .create(r"\\.\mailslot\test1\sample_mailslot")
        .unwrap();
    let mut cfg = NetConfig::from_env().unwrap();
    cfg.bind(Ipv4Addr::LOCALHOST).port(0);
    let receiver = DatagramReceiver::bind(&cfg).unwrap();

    // Golden datagrams: v1 (scapy, Samba shape) is for \pipeslot\demo.
    let v1 = vector("v1_unique_short");
    assert_eq!(
        receiver.handle_datagram(&v1),
        Verdict::Delivered {
            path: r"pipeslot\demo".into(),
            len: 17
        }
    );
    assert_eq!(slot.read_message().unwrap(), b"Hello, mailslot!\0");
    // v8 (Windows shape) is for a mailslot that takes no network messages.
    assert_eq!(
        receiver.handle_datagram(&vector("v8_win_msmail_example")),
        Verdict::Dropped(DropCause::NoMailslot)
    );
    assert_eq!(local_only.info().unwrap().message_count, 0);
    // v6: nmbd's reply to \MAILSLOT\NET\GETDC123, which nobody reads here.
    assert_eq!(
        receiver.handle_datagram(&vector("v6_nmbd_getdc_reply.captured")),
        Verdict::Dropped(DropCause::NoMailslot)
    );
    // v3: 424 bytes, over this mailslot's 64... for \ps\big, none here.
    assert_eq!(
        receiver.handle_datagram(&vector("v3_group_424")),
        Verdict::Dropped(DropCause::NoMailslot)
    );
    for (file, cause) in [
        ("invalid/x1_more_fragments", DropCause::Fragment),
        ("invalid/x2_continuation", DropCause::Fragment),
        ("invalid/x3_not_trans", DropCause::NotMailslot),
        ("invalid/x4_dataoffset_past_end", DropCause::Malformed),
        ("invalid/x5_datacount_past_end", DropCause::Malformed),
        ("invalid/x6_truncated", DropCause::Malformed),
        ("invalid/x7_not_mailslot_name", DropCause::NotMailslot),
        ("invalid/x8_bad_magic", DropCause::NotMailslot),
    ] {
        assert_eq!(
            receiver.handle_datagram(&vector(file)),
            Verdict::Dropped(cause),
            "{file}"
        );
    }
    // Garbage of every length, and every prefix of a valid datagram.
    let mut junk = 0u64;
    for len in 0..700usize {
        let bytes: Vec<u8> = (0..len).map(|i| (i * 131 + len) as u8).collect();
        assert!(matches!(receiver.handle_datagram(&bytes), Verdict::Dropped(_)));
        junk += 1;
    }
    for len in 0..v1.len() {
        assert!(matches!(receiver.handle_datagram(&v1[..len]), Verdict::Dropped(_)));
        junk += 1;
    }
    assert_eq!(slot.info().unwrap().message_count, 0, "nothing malformed got through");

    // Over the mailslot's maximum (64): dropped as too big.
    let (_s, mut wcfg) = capture();
    wcfg.port(receiver.local_addr().unwrap().port());
    let handle = receiver.spawn().unwrap();
    let w = MailslotWriter::open_with(r"\\127.0.0.1\MAILSLOT\PIPESLOT\DEMO", &wcfg).unwrap();
    w.write(&[9; 65]).unwrap();
    w.write(b"case-insensitive").unwrap();
    assert_eq!(slot.read_message().unwrap(), b"case-insensitive");
    let until = std::time::Instant::now() + 5 * SECOND;
    while handle.counters().delivered < 2 {
        assert!(std::time::Instant::now() < until, "delivered is counted");
        std::thread::sleep(Duration::from_millis(5));
    }
    let c = handle.counters();
    assert_eq!(c.dropped_too_big, 1);
    assert_eq!(c.delivered, 2);
    assert_eq!(c.dropped_fragment, 2);
    assert_eq!(c.dropped_no_mailslot, 3);
    assert_eq!(c.received, c.delivered + c.dropped());
    assert_eq!(c.received, 2 + 3 + 8 + junk + 1);
    assert_eq!(
        c.dropped_malformed + c.dropped_not_mailslot + c.dropped_fragment,
        8 + junk
    );
}

#[test]
fn a_network_mailslot_runs_the_receiver_in_process() {
    util::init(); // PIPESLOT_BIND=127.0.0.1, PIPESLOT_MAILSLOT_PORT=0
    let name = slot_name("embedded");
    let slot = MailslotOptions::new()
        .network(true)
        .read_timeout(Duration::from_secs(5))
        .create(&name)
        .unwrap();
    let status = embedded_receiver().expect("create started the receiver");
    let SocketAddr::V4(addr) = status.local_addr else {
        panic!("{status:?}")
    };
    assert_eq!(*addr.ip(), Ipv4Addr::LOCALHOST);
    let mut cfg = NetConfig::from_env().unwrap();
    cfg.port(addr.port());
    let path = name.trim_start_matches(r"\\.\mailslot\");
    let w = MailslotWriter::open_with(format!(r"\\127.0.0.1\mailslot\{path}"), &cfg).unwrap();
    w.write(b"over udp").unwrap();
    assert_eq!(slot.read_message().unwrap(), b"over udp");
    // The counter moves just after the hand-off the reader saw.
    let until = std::time::Instant::now() + 5 * SECOND;
    while embedded_receiver().unwrap().counters.delivered == 0 {
        assert!(std::time::Instant::now() < until, "delivered is counted");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Three hosts and a bridge, each host its own namespace root; readers in
/// `b` and `c` with network reception on UDP 138, writes from `a`.
#[test]
fn broadcast_reaches_both_other_hosts_and_a_host_write_only_one() {
    if !netns::available("broadcast_reaches_both_other_hosts_and_a_host_write_only_one") {
        return;
    }
    util::init();
    let mut lab = Lab::new("bcast");
    let br = lab.namespace("br");
    lab.bridge(&br, "br0");
    let hosts: Vec<String> = ["a", "b", "c"]
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let ns = lab.namespace(h);
            let port = format!("p{h}");
            lab.veth(&ns, "eth0", &br, &port);
            lab.enslave(&br, &port, "br0");
            lab.address(&ns, "eth0", &format!("10.213.0.{}/24", i + 1));
            ns
        })
        .collect();
    lab.hosts(&hosts[0], "10.213.0.3 hostc");
    let root = util::root();
    let env = |h: &str| -> Vec<(String, String)> {
        let dir = root.join(format!("host-{h}"));
        std::fs::create_dir_all(&dir).unwrap();
        vec![
            ("PIPESLOT_DIR".into(), dir.display().to_string()),
            ("PIPESLOT_MAILSLOT_PORT".into(), "138".into()),
            ("PIPESLOT_BIND".into(), "0.0.0.0".into()),
            ("PIPESLOT_WORKGROUP".into(), "PSLAB".into()),
        ]
    };
    let spawn = |role: &str, host: usize, args: &[&str]| {
        let e = env(["a", "b", "c"][host]);
        let e: Vec<(&str, &str)> = e.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Peer::spawn_with(role, args, &e, &Lab::exec(&hosts[host]))
    };
    let slot = r"\\.\mailslot\pipeslot\bcast";
    let b = spawn("mailslot_child::ms_reader", 1, &[slot, "0", "net"]);
    let c = spawn("mailslot_child::ms_reader", 2, &[slot, "0", "net"]);
    assert_eq!(b.expect_line(10 * SECOND), "ready 0.0.0.0:138");
    assert_eq!(c.expect_line(10 * SECOND), "ready 0.0.0.0:138");
    let write = |name: &str, msg: &str| {
        let w = spawn("mailslot_child::ms_writer", 0, &[name, msg]);
        assert_eq!(w.expect_line(10 * SECOND), "sent", "{name}");
    };

    write(r"\\*\mailslot\pipeslot\bcast", "to everyone");
    assert_eq!(b.expect_line(5 * SECOND), "msg to everyone");
    assert_eq!(c.expect_line(5 * SECOND), "msg to everyone");

    write(r"\\10.213.0.2\mailslot\pipeslot\bcast", "to b only");
    assert_eq!(b.expect_line(5 * SECOND), "msg to b only");
    write(r"\\hostc\MAILSLOT\PIPESLOT\BCAST", "to c by name");
    assert_eq!(c.expect_line(5 * SECOND), "msg to c by name");

    // The domain form reaches both; each host's next message proves it got
    // nothing meant for the other.
    write(r"\\pslab\mailslot\pipeslot\bcast", "to the domain");
    assert_eq!(b.expect_line(5 * SECOND), "msg to the domain");
    assert_eq!(c.expect_line(5 * SECOND), "msg to the domain");
    assert_eq!(b.next_line(Duration::from_millis(200)), None);
    assert_eq!(c.next_line(Duration::from_millis(200)), None);
}
