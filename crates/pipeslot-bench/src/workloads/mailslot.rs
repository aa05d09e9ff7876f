//! Workload 6: local mailslot message rate, 64 B one-way, against raw Unix
//! datagram sockets (what a local mailslot rides on).
//!
//! This process writes; the peer creates the mailslot (or binds the
//! datagram socket), reads every message and says `DONE`. The figure is
//! messages per second, first write to `DONE`.

use std::io;

use super::{run_cases, Addr, Case, Ctx, Place, Sample};
use crate::link::Kind;
use crate::peer::{Peer, PeerSpec};
use crate::report::{Outcome, TargetDef, Unit};
use crate::Workload;

const SIZE: usize = 64;

/// Every case: name, transport, address, baseline.
pub(crate) const CASES: [(&str, Kind, Addr, Option<&str>); 2] = [
    (
        "pipeslot-mailslot",
        Kind::Mailslot,
        Addr::Mailslot,
        Some("unix-datagram"),
    ),
    ("unix-datagram", Kind::UnixDatagram, Addr::Path, None),
];

pub(crate) fn run(ctx: &mut Ctx) -> io::Result<Outcome> {
    let count = (ctx.plan.small_msgs / 4).max(1);
    let measure = |peer: &mut Peer, spec: &PeerSpec| {
        let secs = super::bulk::one_way(peer, spec, 1)?;
        Ok(Sample::of(spec.count as f64 / secs))
    };
    let cases: Vec<Case<'_>> = CASES
        .iter()
        .map(|&(name, _, addr, baseline)| Case {
            name,
            variant: "64 B local".to_owned(),
            unit: Unit::PerSec,
            baseline,
            place: Place::Unpinned,
            addr,
            spec: PeerSpec {
                size: SIZE,
                count,
                ..PeerSpec::default()
            },
            measure: &measure,
        })
        .collect();
    let rows = run_cases(ctx, Workload::Mailslot, &cases);
    // Issue 16: exact `info()` counts and the bounded queue kept.
    let targets = vec![TargetDef::ratio_at_least(
        "local mailslot message rate ≥ 0.90× raw Unix datagram socket".to_owned(),
        "mailslot/pipeslot-mailslot/64 B local".to_owned(),
        vec!["mailslot/unix-datagram/64 B local".to_owned()],
        0.90,
    )];
    Ok(Outcome {
        rows,
        targets,
        notes: Vec::new(),
    })
}
