//! Behaviour tests of the pipeslot library: real sockets, real processes.
//! One binary (shared build); each module covers one area.

mod util;

mod tokio_front; // the tokio front end
