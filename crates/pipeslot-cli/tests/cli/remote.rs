//! The verbs on remote names: `call`, `transact`, `send`, `wait` and `info`
//! on `\\127.0.0.1\pipe\…` served by a private Samba, with the port and the
//! credentials from the environment or a credentials file.

use std::time::Duration;

use super::util::{lines, test, Ctx};

#[path = "../../../pipeslot-smb/tests/support/smbd.rs"]
mod smbd;
use smbd::{Answer, NpaPipe, Smbd, PASSWORD, USER};
#[path = "../../../pipeslot-smb/tests/support/dcerpc.rs"]
mod dcerpc;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn remote(ctx: &Ctx, port: u16, args: &[&str]) -> std::process::Command {
    let mut c = ctx.cmd(args);
    c.env("PIPESLOT_SMB_PORT", port.to_string())
        .env("PIPESLOT_USER", USER)
        .env("PIPESLOT_PASSWORD", PASSWORD)
        .env_remove("PIPESLOT_CREDENTIALS");
    c
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

#[test]
fn call_and_transact_speak_dce_rpc_to_srvsvc_through_samba() {
    let Some(smbd) = Smbd::start("cli-srvsvc", "") else {
        return;
    };
    let port = smbd.port;
    test("remote-rpc", Duration::from_secs(60), move |ctx| {
        let name = r"\\127.0.0.1\pipe\srvsvc";
        let bind = hex(&dcerpc::srvsvc_bind());
        let out = ctx.spawn_cmd(remote(ctx, port, &["call", name, "--hex", &bind])).wait();
        let reply = out.success();
        assert!(reply.starts_with("05000c03"), "a bind_ack: {reply}");
        // Several exchanges on one open: the bind, then a call on it.
        let get = hex(&dcerpc::netr_server_get_info(r"\\127.0.0.1"));
        let out = ctx
            .spawn_cmd(remote(ctx, port, &["transact", name, "--hex", &bind, &get]))
            .wait();
        let replies = lines(out.success().as_bytes());
        assert_eq!(replies.len(), 2, "{replies:?}");
        assert!(replies[0].starts_with("05000c03"), "{replies:?}");
        let (platform, server) = dcerpc::decode_server_info_101(&unhex(&replies[1]));
        assert_eq!(platform, 500);
        assert!(!server.is_empty());
        // info: what the server says of the pipe, and the session.
        let info = ctx.spawn_cmd(remote(ctx, port, &["info", name])).wait().success();
        assert!(
            info.contains("type: unknown (the server does not report"),
            "Samba has no FilePipeLocalInformation: {info}"
        );
        assert!(info.contains("session: SMB 3.1.1 with 127.0.0.1:"), "{info}");
        // The same credentials from a file named by PIPESLOT_CREDENTIALS.
        let file = ctx.dir.join("creds");
        std::fs::write(&file, format!("username = {USER}\npassword = {PASSWORD}\n")).unwrap();
        let mut c = ctx.cmd(&["call", name, "--hex", &bind]);
        c.env("PIPESLOT_SMB_PORT", port.to_string())
            .env_remove("PIPESLOT_USER")
            .env("PIPESLOT_CREDENTIALS", &file);
        assert!(ctx.spawn_cmd(c).wait().success().starts_with("05000c03"));
        // A wrong password, and no password shown in the error.
        let mut c = remote(ctx, port, &["call", name, "--hex", &bind]);
        c.env("PIPESLOT_PASSWORD", "wrong-secret");
        let out = ctx.spawn_cmd(c).wait();
        let line = out.error("ERROR_LOGON_FAILURE", 1326, name);
        assert!(!line.contains("wrong-secret"), "{line}");
        let out = ctx
            .spawn_cmd(remote(ctx, port, &["call", r"\\127.0.0.1\pipe\nothing-here", "x"]))
            .wait();
        out.error("ERROR_FILE_NOT_FOUND", 2, r"\\127.0.0.1\pipe\nothing-here");
    });
    drop(smbd);
}

#[test]
fn send_and_wait_on_a_remote_message_pipe() {
    let Some(smbd) = Smbd::start("cli-send", "") else {
        return;
    };
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let tx = std::sync::Mutex::new(tx);
    let _sink = NpaPipe::serve(smbd.np_socket("sink"), true, move |m| {
        let _ = tx.lock().unwrap().send(m.to_vec());
        Answer::Nothing
    });
    let port = smbd.port;
    test("remote-send", Duration::from_secs(60), move |ctx| {
        let name = r"\\127.0.0.1\pipe\sink";
        let out = ctx
            .spawn_cmd(remote(ctx, port, &["wait", name, "--timeout", "5000"]))
            .wait();
        out.success();
        ctx.spawn_cmd(remote(ctx, port, &["send", name, "first", "second"]))
            .wait()
            .success();
        for want in [&b"first"[..], b"second"] {
            assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), want);
        }
        // --timeout bounds the whole remote operation, even a connection
        // that is never answered.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let silent_port = silent.local_addr().unwrap().port();
        let t = std::time::Instant::now();
        let out = ctx
            .spawn_cmd(remote(ctx, silent_port, &["call", name, "x", "--timeout", "700"]))
            .wait();
        out.error("ERROR_SEM_TIMEOUT", 121, name);
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        drop(silent);
    });
    drop(smbd);
}

/// `pipeslot gateway` in the Samba mode: `serve` monitors behind smbd, the
/// seed's story (three senders into one monitor) and a `call`, with smbd
/// doing the SMB and the log-on.
#[test]
fn the_gateway_s_samba_mode_serves_local_pipes_through_smbd() {
    let Some(smbd) = Smbd::start("cli-samba-mode", "") else {
        return;
    };
    let port = smbd.port;
    let np_dir = smbd.np_socket("x").parent().unwrap().to_owned();
    test("samba-mode", Duration::from_secs(60), move |ctx| {
        let logs = ctx.name("logs").to_lowercase();
        let upper = ctx.name("upper").to_lowercase();
        let monitor = ctx.serve(&logs, &["--message", "--accept-remote"], 4);
        let _upper = ctx.serve(
            &upper,
            &["--message", "--accept-remote", "--exec", "sed", "-u", r"s/.*/\U&/"],
            4,
        );
        let config = ctx.dir.join("samba-mode.toml");
        std::fs::write(
            &config,
            format!(
                "exports = [\"{logs}\", \"{upper}\"]\n[samba]\nnp_dir = \"{}\"\n",
                np_dir.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
        let gw = ctx.spawn(&["gateway", "--config", config.to_str().unwrap()]);
        gw.wait_stdout("the serving line", |o| o.contains(&b'\n'));
        assert!(String::from_utf8_lossy(&gw.stdout()).contains("smbd's external pipes"));
        let senders: Vec<_> = (0..3)
            .map(|i| {
                let a = format!("host{i} one");
                let b = format!("host{i} two");
                ctx.spawn_cmd(remote(
                    ctx,
                    port,
                    &["send", &format!(r"\\127.0.0.1\pipe\{logs}"), &a, &b],
                ))
            })
            .collect();
        for s in senders {
            s.wait().success();
        }
        let seen = monitor.wait_stdout("6 lines", |o| o.iter().filter(|b| **b == b'\n').count() >= 6);
        let mut got = lines(&seen);
        got.sort();
        let mut want: Vec<String> = (0..3)
            .flat_map(|i| [format!("host{i} one"), format!("host{i} two")])
            .collect();
        want.sort();
        assert_eq!(got, want);
        let out = ctx
            .spawn_cmd(remote(
                ctx,
                port,
                &["call", &format!(r"\\127.0.0.1\pipe\{upper}"), "through samba"],
            ))
            .wait();
        assert_eq!(out.success(), "THROUGH SAMBA\n");
        let log = String::from_utf8_lossy(&gw.stderr()).into_owned();
        assert!(
            log.contains(&format!("{USER} from 127.0.0.1:")) && log.contains("(through smbd)"),
            "{log}"
        );
    });
    drop(smbd);
}
