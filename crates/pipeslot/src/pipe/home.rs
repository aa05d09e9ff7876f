//! Where one server process's instances of a name listen: the name's own
//! folder (its owner, or root), or a granted user's folder inside it.

use std::io;
use std::sync::Arc;

use pipeslot_proto::PipeName;

use crate::error::{err, Win32Error};
use crate::ns::{self, Claim, Dir, DirLock, Kind, Lookup, Object};
use crate::pipe::client::{self, PipeDirs, JOINERS, SECURITY};
use crate::security::PipeSecurity;

/// A server process's place in a pipe's folder.
#[derive(Debug)]
pub(crate) struct Home {
    pub(crate) obj: Arc<Object>,
    /// For a user the owner granted FILE_CREATE_PIPE_INSTANCE: `joiners/`,
    /// our folder in it, and its name (our uid).
    joiner: Option<(Dir, Dir, String)>,
}

impl Home {
    /// Takes a name for this process: a folder of its own (new, or ours
    /// from before), or a granted user's folder beside the owner's
    /// instances. Anyone else, root included, is refused with the owner's
    /// name: a service that joined a name another user squatted would hand
    /// some of its clients to the squatter (docs/SECURITY.md).
    pub(crate) fn claim(name: &PipeName) -> io::Result<Home> {
        let what = name.to_string();
        let obj = match ns::claim(Kind::Pipe, name.folded(), &what, &client::any_live)? {
            Claim::Mine(obj) => return Ok(Home::owner(obj)),
            Claim::Theirs(obj) => obj,
        };
        let me = ns::me();
        let owner = obj.owner();
        let dirs = PipeDirs::load(Arc::new(obj));
        let gid = rustix::process::getegid().as_raw();
        let groups: Vec<u32> = rustix::process::getgroups()
            .map(|g| g.into_iter().map(|g| g.as_raw()).collect())
            .unwrap_or_default();
        let granted = dirs
            .grants()
            .is_some_and(|g| g.permits_create_instance(me, gid, &groups));
        let denied = || {
            err(
                Win32Error::ERROR_ACCESS_DENIED,
                format!(
                    "{what} belongs to {}, whose server is running; only its owner may add instances \
                     (or a user it allows to: PipeSecurity::allow_create_instance_user)",
                    ns::user_label(owner)
                ),
            )
        };
        if !granted {
            return Err(denied());
        }
        let joiners = match dirs.obj.dir.lookup(JOINERS)? {
            Lookup::Dir(d) if d.owner() == owner => d,
            _ => return Err(denied()),
        };
        let mine = me.to_string();
        let own = joiners.make_dir(&mine, 0o755).map_err(|e| ns::dir_error(&e, &what))?;
        Ok(Home {
            obj: dirs.obj,
            joiner: Some((joiners, own, mine)),
        })
    }

    fn owner(obj: Object) -> Home {
        Home {
            obj: Arc::new(obj),
            joiner: None,
        }
    }

    /// The folder this process binds its socket in.
    pub(crate) fn dir(&self) -> &Dir {
        match &self.joiner {
            Some((_, own, _)) => own,
            None => &self.obj.dir,
        }
    }

    /// The creation lock of this process's folder; `None` when the folder
    /// was removed meanwhile (claim again).
    pub(crate) fn lock(&self) -> io::Result<Option<DirLock>> {
        match &self.joiner {
            Some((joiners, own, mine)) => ns::lock(own, joiners, mine),
            None => ns::lock(&self.obj.dir, &self.obj.root, &self.obj.entry),
        }
    }

    /// Records what the first instance decides for the whole pipe: its
    /// spelling, and whom it lets add instances. Under the lock.
    pub(crate) fn record_first(&self, display: &str, security: &PipeSecurity) -> io::Result<()> {
        if self.joiner.is_some() {
            return Ok(()); // the owner's records stand
        }
        let dir = &self.obj.dir;
        dir.write_atomic("name", display.as_bytes(), 0o644)?;
        if security.grants_create_instance() {
            dir.write_atomic(SECURITY, security.encode_grants().as_bytes(), 0o644)?;
            dir.make_dir(JOINERS, 0o1777)?;
        } else {
            dir.remove(SECURITY);
        }
        Ok(())
    }

    /// Removes what is left once this process's last socket is gone, when
    /// no other server is left in the folder and no other process waits
    /// to create in it. Under the lock.
    pub(crate) fn tidy(&self, lock: &mut DirLock) {
        match &self.joiner {
            Some((joiners, own, mine)) => {
                if !own.sockets().is_empty() {
                    return;
                }
                let Some(_keep) = lock.alone(own) else { return };
                own.remove(ns::KEEP_FILE);
                own.remove("lock");
                joiners.remove_dir(mine);
            }
            None => {
                let dir = &self.obj.dir;
                if !dir.sockets().is_empty() {
                    return;
                }
                let Some(_keep) = lock.alone(dir) else { return };
                if let Ok(Lookup::Dir(j)) = dir.lookup(JOINERS) {
                    for sub in j.dir_names("") {
                        j.remove_dir(&sub); // only empty ones go
                    }
                    if !dir.remove_dir(JOINERS) {
                        return; // a granted user still serves
                    }
                }
                for f in ["name", SECURITY, ns::KEEP_FILE, "lock"] {
                    dir.remove(f);
                }
                self.obj.root.remove_dir(&self.obj.entry);
            }
        }
    }
}
