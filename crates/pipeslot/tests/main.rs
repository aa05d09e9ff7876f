//! Behaviour tests of the pipeslot library: real sockets, real processes.
//! One binary (one link on a 2-core machine); each module covers one area.

mod util;

mod attacks; // another local user attacks the namespace: capture, stall, locks, plants
mod child; // roles played by re-executed copies of this binary
mod client; // open, busy, wait, call
mod exact; // the last differences from Win32 and tokio, one test each
mod exhaustion; // a server out of file descriptors: said at once, others served, recovery
mod gateway; // local pipes served over SMB2 to our client and impacket
mod io; // messages, bytes, transact, peek, flush, backpressure
mod mailslot_child; // mailslot roles played by re-executed copies of this binary
mod mailslot_interop; // a real peer: Samba's nmbd logs our datagram and answers NETLOGON
mod mailslot_local; // local mailslots: one reader, timeouts, exact info, sizes, load
mod mailslot_net; // remote mailslots: our datagrams (codec, tshark), receiver, 3-host broadcast
mod names; // names and the namespace: folding, long names, stale entries, listing
mod netfaults; // a faulty wire between two hosts: loss, delay, reordering, cuts, vanished peers
mod netns; // private test networks: network namespaces, veth, a bridge
mod peer_death; // a dead peer never leaves anyone hanging
mod props; // property tests over real sockets
mod remote; // remote pipes over SMB through a private Samba
mod security; // identity and access control across uids
mod server; // instances, options, connect/disconnect
mod shm; // the shared-memory data path: who takes it, bad segments refused
mod tokio_front; // the tokio front end
mod win32_layer; // the Win32::Pipe-style calls
mod wire; // a user-space wire with faults between two namespaces (TUN devices)
