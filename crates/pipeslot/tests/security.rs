//! Client identity and access control across users: the client runs as
//! `nobody` (uid 65534) in a child process; the server is this process.

use std::time::Duration;

use pipeslot::blocking::{ClientOptions, ServerOptions};
use pipeslot::{PipeMode, PipeSecurity};

use crate::util::{self, can_switch_uid, Peer, SECOND};

const NOBODY: u32 = 65534;

#[test]
fn the_server_sees_who_the_client_is() {
    let name = util::name("ident");
    let s = ServerOptions::new().create(&name).unwrap();
    assert_eq!(s.client_identity(), None);
    let _c = ClientOptions::new().open(&name).unwrap();
    s.connect().unwrap();
    let id = s.client_identity().unwrap();
    assert_eq!(id.pid, std::process::id());
    assert_eq!(id.uid, rustix::process::geteuid().as_raw());
    assert_eq!(id.gid, rustix::process::getegid().as_raw());
    if id.uid == 0 {
        assert_eq!(id.user.as_deref(), Some("root"));
    }
    assert_eq!(id.computer, None, "a local client");
    s.disconnect().unwrap();
    assert_eq!(s.client_identity(), None);
}

#[test]
fn the_server_sees_a_child_process_identity() {
    let name = util::name("ident-child");
    let s = ServerOptions::new().pipe_mode(PipeMode::Message).create(&name).unwrap();
    let peer = Peer::spawn("client_echo", &[&name, "msg"]);
    s.connect().unwrap();
    assert_eq!(peer.expect_line(10 * SECOND), "open");
    assert_eq!(s.client_identity().unwrap().pid, peer.pid());
}

/// Runs a nobody client against a server with `security`; returns what the
/// client reported and whether the server saw a client.
fn nobody_tries(tag: &str, security: PipeSecurity) -> (String, Option<u32>) {
    let name = util::name(tag);
    let s = ServerOptions::new()
        .pipe_mode(PipeMode::Message)
        .security(security)
        .create(&name)
        .unwrap();
    let peer = Peer::spawn_as("client_echo", &[&name, "msg"], Some(NOBODY));
    let said = peer.expect_line(20 * SECOND);
    let seen = if s.connect_timeout(Duration::from_millis(300)).unwrap() {
        s.client_identity().map(|i| i.uid)
    } else {
        None
    };
    (said, seen)
}

#[test]
fn owner_only_by_default_refuses_another_user_before_the_server_sees_it() {
    if !can_switch_uid() {
        return;
    }
    let (said, seen) = nobody_tries("acl-default", PipeSecurity::owner_only());
    assert_eq!(said, "error ERROR_ACCESS_DENIED");
    assert_eq!(seen, None, "the server never sees a refused client");
}

#[test]
fn allowed_users_groups_and_everyone_get_in() {
    if !can_switch_uid() {
        return;
    }
    for (tag, sec) in [
        ("acl-user", PipeSecurity::owner_only().allow_user(NOBODY)),
        ("acl-group", PipeSecurity::owner_only().allow_group(NOBODY)),
        ("acl-everyone", PipeSecurity::owner_only().allow_everyone()),
    ] {
        let (said, seen) = nobody_tries(tag, sec);
        assert_eq!(said, "open", "{tag}");
        assert_eq!(seen, Some(NOBODY), "{tag}: the server sees uid 65534");
    }
}

#[test]
fn deny_wins_over_allow() {
    if !can_switch_uid() {
        return;
    }
    let (said, seen) = nobody_tries(
        "acl-deny",
        PipeSecurity::owner_only().allow_everyone().deny_user(NOBODY),
    );
    assert_eq!(said, "error ERROR_ACCESS_DENIED");
    assert_eq!(seen, None);
    let (said, _) = nobody_tries(
        "acl-deny-group",
        PipeSecurity::owner_only().allow_user(NOBODY).deny_group(NOBODY),
    );
    assert_eq!(said, "error ERROR_ACCESS_DENIED");
}

#[test]
fn a_refused_client_leaves_the_instance_listening() {
    if !can_switch_uid() {
        return;
    }
    let name = util::name("acl-listen");
    let s = ServerOptions::new().max_instances(1).create(&name).unwrap();
    let peer = Peer::spawn_as("client_echo", &[&name], Some(NOBODY));
    assert_eq!(peer.expect_line(20 * SECOND), "error ERROR_ACCESS_DENIED");
    let _me = ClientOptions::new()
        .open(&name)
        .expect("the single instance still listens");
    s.connect().unwrap();
    assert_eq!(s.client_identity().unwrap().pid, std::process::id());
}

#[test]
fn another_user_cannot_add_instances_to_a_served_name() {
    if !can_switch_uid() {
        return;
    }
    let name = util::name("squat");
    let _mine = ServerOptions::new().create(&name).unwrap();
    let peer = Peer::spawn_as("server_create", &[&name], Some(NOBODY));
    assert_eq!(peer.expect_line(20 * SECOND), "error ERROR_ACCESS_DENIED");
    // A name nobody serves is anyone's to create.
    let free = util::name("squat-free");
    let peer = Peer::spawn_as("server_create", &[&free], Some(NOBODY));
    assert_eq!(peer.expect_line(20 * SECOND), "created");
}

#[test]
fn a_name_squatted_by_another_user_is_refused_to_the_late_server() {
    if !can_switch_uid() {
        return;
    }
    let name = util::name("squatted");
    let squatter = Peer::spawn_as("server_echo", &[&name, "255", "1"], Some(NOBODY));
    assert_eq!(squatter.expect_line(20 * SECOND), "ready");
    let late = Peer::spawn_as("server_create", &[&name], Some(NOBODY - 1));
    assert_eq!(late.expect_line(20 * SECOND), "error ERROR_ACCESS_DENIED");
    // Root too: a root service joining a squatted name would hand some of
    // its clients to the squatter. The error names who holds the name.
    let e = ServerOptions::new().create(&name).unwrap_err();
    assert_eq!(util::code(&e), Some(pipeslot::Win32Error::ERROR_ACCESS_DENIED), "{e}");
    assert!(e.to_string().contains("uid 65534"), "names the owner: {e}");
}
