mod access; // owner-only by default, --allow-user/--allow-group/--everyone, with a second uid
mod bench; // `pipeslot bench` runs and writes JSON (no timing asserted)
mod client; // send, call, transact, wait against real servers
mod demo; // `pipeslot demo` runs and says what it showed
mod errors; // every error line: the Win32 name, number and the name it concerns
mod gateway; // pipes served to the network: accounts, exports, senders into one monitor
mod mailslot; // serve/send/info/list on mailslots, one-way verbs, datagrams on loopback (codec + tshark)
#[path = "../../../pipeslot/tests/netns.rs"]
mod netns; // private networks (network namespaces), shared with the library's tests
mod query; // list, info, PIPESLOT_DIR, name spellings
mod readme; // the README's transcripts, run as written
mod remote; // the verbs on remote names through a private Samba
mod serve; // serve to stdout (message, byte, hex), echo, exec, max-clients, many daemons at once
pub(crate) mod util; // the test context: temp namespace, processes, watchdog
