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
