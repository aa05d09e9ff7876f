//! `send`: one open, then each MSG as one message (message pipes) or as
//! bytes (byte pipes); with no MSG or `-`, stdin: one message per line on
//! message pipes (the newline is not sent), a raw copy on byte pipes.

use std::io::{self, BufRead, Read, Write};

use pipeslot::blocking::{ClientOptions, NamedPipeClient};
use pipeslot::{PipeMode, PipeName};

use crate::error::wrap;
use crate::progress::Progress;
use crate::settings::{Input, Send};
use crate::{hex, pipe};

const BUF: usize = 256 * 1024;

pub(crate) fn run(name: &PipeName, s: Send) -> io::Result<()> {
    // Write-only, so a server that only reads (PIPE_ACCESS_INBOUND) takes us too.
    let started = std::time::Instant::now();
    let mut opts = ClientOptions::new();
    opts.read(false);
    if let Some(uid) = s.server_user {
        opts.require_server_user(uid);
    }
    let client = pipe::open(name, &opts, s.wait)?;
    let mode = client.info()?.mode;
    let mut progress = s.progress.then(Progress::new);
    let mut put = |data: &[u8]| -> io::Result<()> {
        write(&client, mode, data)?;
        if let Some(p) = progress.as_mut() {
            p.add(data.len());
        }
        Ok(())
    };
    match s.input {
        Input::Args(msgs) => msgs.iter().try_for_each(|m| put(m))?,
        Input::Stdin { hex } if hex || mode == PipeMode::Message => each_line(hex, &mut put)?,
        Input::Stdin { .. } => copy(&mut put)?,
    }
    if let Some(p) = &progress {
        p.finish(mode == PipeMode::Message);
    }
    tracing::info!("sent to {name} in {:.1?}", started.elapsed());
    Ok(())
}

fn write(client: &NamedPipeClient, mode: PipeMode, data: &[u8]) -> io::Result<()> {
    match mode {
        PipeMode::Message => client.write_msg(data),
        _ => (&*client).write_all(data),
    }
}

/// Each stdin line (without its newline; hex-decoded with `hex`). Also
/// `send` on a mailslot.
pub(crate) fn each_line(hex: bool, put: &mut impl FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
    let mut stdin = io::BufReader::with_capacity(BUF, io::stdin().lock());
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = stdin
            .read_until(b'\n', &mut line)
            .map_err(|e| wrap(e, "reading stdin"))?;
        if n == 0 {
            return Ok(());
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        if hex {
            put(&hex::decode(&line)?)?;
        } else {
            put(&line)?;
        }
    }
}

/// Stdin as it comes, in chunks.
fn copy(put: &mut impl FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
    let mut stdin = io::stdin().lock();
    let mut buf = vec![0u8; BUF];
    loop {
        match stdin.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => put(&buf[..n])?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(wrap(e, "reading stdin")),
        }
    }
}
