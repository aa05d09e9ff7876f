//! `pipeslot gateway`: accounts added with `gateway user add`, exported
//! pipes reached as `\\127.0.0.1\pipe\NAME` by `call` and `send`; the seed's
//! story over the network (several senders into one monitor).

use std::time::Duration;

use super::util::{lines, test, Ctx};

fn remote_cmd(ctx: &Ctx, port: u16, args: &[&str]) -> std::process::Command {
    let mut c = ctx.cmd(args);
    c.env("PIPESLOT_SMB_PORT", port.to_string())
        .env("PIPESLOT_USER", "alice")
        .env("PIPESLOT_PASSWORD", "wonderland")
        .env_remove("PIPESLOT_CREDENTIALS");
    c
}

/// Writes the config (exporting `exports`), starts the gateway, returns its port.
fn start_gateway(ctx: &Ctx, exports: &[&str]) -> (super::util::Proc, u16) {
    let config = ctx.dir.join("gateway.toml");
    let out = ctx.run_with_stdin(
        &["gateway", "user", "add", "alice", "--config", config.to_str().unwrap()],
        b"wonderland\n",
    );
    out.success();
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(!text.contains("wonderland"), "only the hash is stored: {text}");
    let list: Vec<String> = exports.iter().map(|e| format!("\"{e}\"")).collect();
    std::fs::write(
        &config,
        format!("listen = \"127.0.0.1:0\"\nexports = [{}]\n{text}", list.join(", ")),
    )
    .unwrap();
    let gw = ctx.spawn(&["gateway", "--config", config.to_str().unwrap()]);
    let first = gw.wait_stdout("the listening line", |o| o.contains(&b'\n'));
    let line = String::from_utf8_lossy(&first).lines().next().unwrap().to_owned();
    let port = line.rsplit(':').next().unwrap().trim().parse().unwrap();
    (gw, port)
}

#[test]
fn several_senders_on_the_network_into_one_monitor_and_a_call() {
    test("gateway-story", Duration::from_secs(60), |ctx| {
        let logs = ctx.name("logs");
        let upper = ctx.name("upper");
        let monitor = ctx.serve(&logs, &["--message", "--instances", "4", "--accept-remote"], 4);
        let _upper = ctx.serve(
            &upper,
            &["--message", "--accept-remote", "--exec", "sed", "-u", r"s/.*/\U&/"],
            4,
        );
        let (_gw, port) = start_gateway(ctx, &[&logs, &upper]);
        let remote_logs = format!(r"\\127.0.0.1\pipe\{logs}");
        let senders: Vec<_> = (0..3)
            .map(|i| {
                let msgs: Vec<String> = (0..5).map(|j| format!("host{i}-line{j}")).collect();
                let mut args = vec!["send".to_owned(), remote_logs.clone()];
                args.extend(msgs);
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                ctx.spawn_cmd(remote_cmd(ctx, port, &args))
            })
            .collect();
        for s in senders {
            s.wait().success();
        }
        let seen = monitor.wait_stdout("15 lines", |o| o.iter().filter(|b| **b == b'\n').count() >= 15);
        let mut got = lines(&seen);
        got.sort();
        let mut want: Vec<String> = (0..3)
            .flat_map(|i| (0..5).map(move |j| format!("host{i}-line{j}")))
            .collect();
        want.sort();
        assert_eq!(got, want, "nothing lost, nothing torn");
        let out = ctx
            .spawn_cmd(remote_cmd(
                ctx,
                port,
                &["call", &format!(r"\\127.0.0.1\pipe\{upper}"), "hello"],
            ))
            .wait();
        assert_eq!(out.success(), "HELLO\n");
        // A pipe not exported is invisible.
        let out = ctx
            .spawn_cmd(remote_cmd(ctx, port, &["call", r"\\127.0.0.1\pipe\not-exported", "x"]))
            .wait();
        out.error("ERROR_FILE_NOT_FOUND", 2, "not-exported");
    });
}

#[test]
fn a_config_others_can_read_is_refused() {
    test("gateway-mode", Duration::from_secs(30), |ctx| {
        let config = ctx.dir.join("loose.toml");
        std::fs::write(&config, "exports = []\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
        ctx.run(&["gateway", "--config", config.to_str().unwrap()])
            .error("ERROR_ACCESS_DENIED", 5, "chmod 600");
    });
}

#[test]
fn sighup_reloads_the_exports_without_dropping_a_connection() {
    test("gateway-reload", Duration::from_secs(60), |ctx| {
        let logs = ctx.name("logs");
        let late = ctx.name("late");
        let monitor = ctx.serve(&logs, &["--message", "--accept-remote"], 4);
        let _late = ctx.serve(&late, &["--message", "--accept-remote", "--echo"], 4);
        let (gw, port) = start_gateway(ctx, &[&logs]);
        let call_late = || {
            ctx.spawn_cmd(remote_cmd(
                ctx,
                port,
                &["call", &format!(r"\\127.0.0.1\pipe\{late}"), "ping"],
            ))
            .wait()
        };
        call_late().error("ERROR_FILE_NOT_FOUND", 2, &late);
        // A sender that stays connected across the reload.
        let mut held = ctx.spawn_cmd(remote_cmd(ctx, port, &["send", &format!(r"\\127.0.0.1\pipe\{logs}")]));
        held.feed(b"before\n");
        monitor.wait_stdout("the first line", |o| o.ends_with(b"before\n"));
        let config = ctx.dir.join("gateway.toml");
        let text = std::fs::read_to_string(&config).unwrap();
        let mut widened = text.replacen(
            &format!("exports = [\"{logs}\"]"),
            &format!("exports = [\"{logs}\", \"{late}\"]"),
            1,
        );
        assert_ne!(widened, text);
        std::fs::write(&config, &widened).unwrap();
        let hup = |gw: &super::util::Proc| {
            let pid = gw.child.id().to_string();
            assert!(std::process::Command::new("kill")
                .args(["-HUP", &pid])
                .status()
                .unwrap()
                .success());
        };
        hup(&gw);
        gw.wait_stderr("the reload", |e| e.contains("reloaded"));
        assert_eq!(call_late().success(), "ping\n");
        held.feed(b"after\n");
        held.close_stdin();
        held.wait().success();
        monitor.wait_stdout("the second line", |o| o.ends_with(b"before\nafter\n"));
        // A file that no longer reads is refused; what is in force stays.
        widened.push_str("\nthis is not toml\n");
        std::fs::write(&config, &widened).unwrap();
        hup(&gw);
        gw.wait_stderr("the refusal", |e| e.contains("not reloaded"));
        assert_eq!(call_late().success(), "ping\n");
    });
}

#[test]
fn serve_allow_user_names_the_remote_users_it_takes() {
    test("gateway-allow", Duration::from_secs(60), |ctx| {
        let only_bob = ctx.name("only-bob");
        let _srv = ctx.serve(&only_bob, &["--message", "--echo", "--allow-user", r"*\bob"], 4);
        let (_gw, port) = start_gateway(ctx, &[&only_bob]);
        let out = ctx
            .spawn_cmd(remote_cmd(
                ctx,
                port,
                &["call", &format!(r"\\127.0.0.1\pipe\{only_bob}"), "hi"],
            ))
            .wait();
        out.error("ERROR_ACCESS_DENIED", 5, &only_bob);
        ctx.run(&["serve", "x", "--allow-user", r"WG\bob", "--reject-remote"])
            .usage("--reject-remote");
    });
}

/// The unit in `dist/systemd` is one systemd takes, pointing at this build.
#[test]
fn the_systemd_unit_verifies() {
    test("gateway-unit", Duration::from_secs(60), |ctx| {
        let there = std::process::Command::new("systemd-analyze")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !there {
            assert!(std::env::var("CI").as_deref() != Ok("true"), "CI must install systemd");
            eprintln!("skipped: needs systemd-analyze");
            return;
        }
        let unit = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../dist/systemd/pipeslot-gateway.service"
        ))
        .unwrap();
        assert!(unit.contains("ExecStart=/usr/local/bin/pipeslot gateway --config "));
        assert!(unit.contains("ExecReload=/bin/kill -HUP $MAINPID"), "reload is SIGHUP");
        let path = ctx.dir.join("pipeslot-gateway.service");
        std::fs::write(&path, unit.replace("/usr/local/bin/pipeslot", super::util::BIN)).unwrap();
        let out = std::process::Command::new("systemd-analyze")
            .args(["verify", path.to_str().unwrap()])
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && said.trim().is_empty(), "{said}");
    });
}

/// The seed's story across machines: five daemons on one host send their
/// lines to `\\GW\pipe\logs`, where the gateway (on port 445, as for
/// Windows) hands them to one `serve` monitor. Two network namespaces on a
/// veth pair are the two hosts.
#[test]
fn five_senders_on_another_host_into_one_monitor_through_the_gateway() {
    use super::netns::{self, Lab};
    if !netns::available("five_senders_on_another_host") {
        return;
    }
    test("gateway-hosts", Duration::from_secs(120), |ctx| {
        let mut lab = Lab::new("gw");
        let gw = lab.namespace("gw");
        let hosts = lab.namespace("hosts");
        lab.veth(&gw, "eth0", &hosts, "eth0");
        lab.address(&gw, "eth0", "10.88.0.1/24");
        lab.address(&hosts, "eth0", "10.88.0.2/24");
        let inside = |ns: &str, args: &[&str]| {
            let mut c = std::process::Command::new("ip");
            c.args(["netns", "exec", ns, super::util::BIN])
                .args(args)
                .env("PIPESLOT_DIR", &ctx.dir)
                .env_remove("PIPESLOT_LOG")
                .env_remove("PIPESLOT_SMB_PORT");
            c
        };
        let logs = ctx.name("logs");
        let monitor = ctx.spawn_cmd(inside(
            &gw,
            &["serve", &logs, "--message", "--instances", "8", "--accept-remote"],
        ));
        ctx.wait_listening(&logs, 8);
        let config = ctx.dir.join("hosts-gateway.toml");
        ctx.run_with_stdin(
            &["gateway", "user", "add", "daemon", "--config", config.to_str().unwrap()],
            b"s3cret\n",
        )
        .success();
        let users = std::fs::read_to_string(&config).unwrap();
        std::fs::write(
            &config,
            format!("listen = \"10.88.0.1:445\"\nexports = [\"{logs}\"]\n{users}"),
        )
        .unwrap();
        let gateway = ctx.spawn_cmd(inside(&gw, &["gateway", "--config", config.to_str().unwrap()]));
        gateway.wait_stdout("the listening line", |o| o.contains(&b'\n'));
        const LINES: usize = 200;
        let senders: Vec<_> = (0..5)
            .map(|d| {
                // Names are case-insensitive across the network too.
                let remote = format!(r"\\10.88.0.1\pipe\{}", logs.to_uppercase());
                let mut c = inside(&hosts, &["send", &remote]);
                c.env("PIPESLOT_USER", "daemon").env("PIPESLOT_PASSWORD", "s3cret");
                let mut p = ctx.spawn_cmd(c);
                let text: String = (0..LINES)
                    .map(|i| format!("daemon{d} line {i:04} {}\n", "x".repeat(i % 97)))
                    .collect();
                p.feed(text.as_bytes());
                p.close_stdin();
                p
            })
            .collect();
        for s in senders {
            s.wait().success();
        }
        let seen = monitor.wait_stdout("every line", |o| o.iter().filter(|b| **b == b'\n').count() >= 5 * LINES);
        let got = lines(&seen);
        assert_eq!(got.len(), 5 * LINES, "nothing lost, nothing duplicated");
        for d in 0..5 {
            let mine: Vec<&String> = got.iter().filter(|l| l.starts_with(&format!("daemon{d} "))).collect();
            assert_eq!(mine.len(), LINES, "daemon{d}");
            for (i, l) in mine.iter().enumerate() {
                // Whole lines, in each sender's order: no torn or mixed message.
                assert_eq!(**l, format!("daemon{d} line {i:04} {}", "x".repeat(i % 97)));
            }
        }
        drop(gateway);
    });
}
