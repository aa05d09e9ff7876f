//! Workload 3: small-message rate, 64 B one-way, message mode.
//!
//! One message per call against a raw stream with a length prefix (one
//! `write` per message, a buffered reader) and `SOCK_SEQPACKET`; pipeslot's
//! batch path (`write_msgs`, one `sendmsg` per 256 messages here) against
//! ZeroMQ PUSH/PULL, which batches inside libzmq. Every reader reads one
//! message per call. The figure is messages per second, first send to
//! `DONE`. All sockets get 4 MiB buffers.

use std::io;

use super::{run_cases, Addr, Case, Ctx, Place, Sample};
use crate::baseline::TUNED_BUFFER;
use crate::link::Kind;
use crate::peer::{Peer, PeerSpec};
use crate::report::{Outcome, TargetDef, Unit};
use crate::Workload;

const SIZE: usize = 64;
/// Messages per `write_msgs` call in the batch case.
const BATCH: usize = 256;

/// Every case: name, transport, messages per call, baseline.
pub(crate) const CASES: [(&str, Kind, usize, Option<&str>); 6] = [
    ("pipeslot-msg", Kind::PipeMessage, 1, Some("unix-stream-prefixed")),
    (
        "pipeslot-shm-msg",
        Kind::PipeMessageShm,
        1,
        Some("unix-stream-prefixed"),
    ),
    ("pipeslot-batch", Kind::PipeMessage, BATCH, Some("zeromq-push-pull")),
    ("unix-stream-prefixed", Kind::UnixPrefixed, 1, None),
    ("seqpacket", Kind::SeqPacket, 1, Some("unix-stream-prefixed")),
    ("zeromq-push-pull", Kind::ZmqPushPull, 1, Some("unix-stream-prefixed")),
];

fn batch_of(case: &str) -> usize {
    CASES.iter().find(|c| c.0 == case).map_or(1, |c| c.2)
}

pub(crate) fn run(ctx: &mut Ctx) -> io::Result<Outcome> {
    let count = ctx.plan.small_msgs;
    let measure = |peer: &mut Peer, spec: &PeerSpec| {
        let secs = super::bulk::one_way(peer, spec, batch_of(&spec.case))?;
        Ok(Sample::of(spec.count as f64 / secs))
    };
    let cases: Vec<Case<'_>> = CASES
        .iter()
        .map(|&(name, kind, _, baseline)| Case {
            name,
            variant: "64 B".to_owned(),
            unit: Unit::PerSec,
            baseline,
            place: Place::Unpinned,
            addr: if kind.pipe().is_some() { Addr::Pipe } else { Addr::Path },
            spec: PeerSpec {
                size: SIZE,
                count,
                buffer: TUNED_BUFFER,
                ..PeerSpec::default()
            },
            measure: &measure,
        })
        .collect();
    let key = |case: &str| format!("small/{case}/64 B");
    let targets = vec![
        TargetDef::ratio_at_least(
            "small messages, one per call ≥ 0.90× raw stream with length prefix".to_owned(),
            key("pipeslot-msg"),
            vec![key("unix-stream-prefixed")],
            0.90,
        ),
        TargetDef::ratio_at_least(
            "small messages on shared memory, one per call ≥ 2× raw stream with length prefix".to_owned(),
            key("pipeslot-shm-msg"),
            vec![key("unix-stream-prefixed")],
            2.0,
        ),
        TargetDef::ratio_at_least(
            "small messages, batch path ≥ ZeroMQ PUSH/PULL".to_owned(),
            key("pipeslot-batch"),
            vec![key("zeromq-push-pull")],
            1.0,
        ),
    ];
    let rows = run_cases(ctx, Workload::Small, &cases);
    Ok(Outcome {
        rows,
        targets,
        notes: Vec::new(),
    })
}
