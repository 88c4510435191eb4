//! mio and polling behind the C interface that bench/rust.cpp loads: one
//! table of peers, each with new / add_all / poll / free. The workload and
//! its callback stay in the C++ driver, so every implementation runs the same
//! callback body (bench/workload.hpp); only the poller differs.
//!
//! Each peer is written the way its documentation shows: mio with
//! `Registry::register` of a `SourceFd` and `Poll::poll` into `Events`;
//! polling with `Poller::add` and `Poller::wait` into a `Vec<Event>`.

use std::io;
use std::os::raw::{c_char, c_int, c_void};
use std::time::Duration;

/// The driver's read callback: the pair's index.
pub type Callback = extern "C" fn(u32);

/// One peer, as the driver sees it. Errors come back as an errno value (0:
/// success), for the driver to throw with the operation's name.
#[repr(C)]
pub struct Peer {
    name: *const c_char,
    /// A new poller; null with *error set when the kernel refuses one.
    new: extern "C" fn(error: *mut c_int) -> *mut c_void,
    /// Watches the read end of every pair for reading, token = pair index.
    /// `fds` is the workload's array: pair i's read end is fds[2i].
    add_all: extern "C" fn(p: *mut c_void, fds: *const c_int, pairs: u32) -> c_int,
    /// One wait (timeout in ms, -1: none), then cb(index) per readable event;
    /// *events is the number of events the wait returned.
    poll: extern "C" fn(p: *mut c_void, timeout_ms: c_int, cb: Callback, events: *mut u32) -> c_int,
    free: extern "C" fn(p: *mut c_void),
}

// The table holds only pointers to static strings and functions.
unsafe impl Sync for Peer {}

static PEERS: [Peer; 2] = [
    Peer { name: b"mio\0".as_ptr() as *const c_char, new: mio_new, add_all: mio_add_all, poll: mio_poll, free: mio_free },
    Peer {
        name: b"polling\0".as_ptr() as *const c_char,
        new: polling_new,
        add_all: polling_add_all,
        poll: polling_poll,
        free: polling_free,
    },
];

/// The peers this library offers; *count is set to their number.
#[no_mangle]
pub extern "C" fn iowait_bench_rust_peers(count: *mut usize) -> *const Peer {
    unsafe { *count = PEERS.len() };
    PEERS.as_ptr()
}

fn errno(e: &io::Error) -> c_int {
    e.raw_os_error().unwrap_or(libc_eio())
}

// EIO, for an error without an errno (none of these calls make one).
fn libc_eio() -> c_int {
    5
}

fn timeout(ms: c_int) -> Option<Duration> {
    if ms < 0 {
        None
    } else {
        Some(Duration::from_millis(ms as u64))
    }
}

fn make<T>(r: io::Result<T>, error: *mut c_int) -> *mut c_void {
    match r {
        Ok(v) => Box::into_raw(Box::new(v)) as *mut c_void,
        Err(e) => {
            unsafe { *error = errno(&e) };
            std::ptr::null_mut()
        }
    }
}

// mio 0.8: edge-triggered, as mio always is on epoll. The workload reads one
// byte per event, which is enough here: every event stands for one byte
// written into that pair since it was last reported (bench/rust.cpp says why).

// Same capacity as raw epoll's batch (bench/raw.cpp): every ready fd of these
// workloads comes back in one call.
const CAPACITY: usize = 1024;

struct MioLoop {
    poll: mio::Poll,
    events: mio::Events,
}

extern "C" fn mio_new(error: *mut c_int) -> *mut c_void {
    make(mio::Poll::new().map(|poll| MioLoop { poll, events: mio::Events::with_capacity(CAPACITY) }), error)
}

extern "C" fn mio_add_all(p: *mut c_void, fds: *const c_int, pairs: u32) -> c_int {
    let l = unsafe { &mut *(p as *mut MioLoop) };
    let fds = unsafe { std::slice::from_raw_parts(fds, 2 * pairs as usize) };
    for i in 0..pairs as usize {
        let fd = fds[2 * i];
        let r = l.poll.registry().register(&mut mio::unix::SourceFd(&fd), mio::Token(i), mio::Interest::READABLE);
        if let Err(e) = r {
            return errno(&e);
        }
    }
    0
}

extern "C" fn mio_poll(p: *mut c_void, timeout_ms: c_int, cb: Callback, events: *mut u32) -> c_int {
    let l = unsafe { &mut *(p as *mut MioLoop) };
    if let Err(e) = l.poll.poll(&mut l.events, timeout(timeout_ms)) {
        return errno(&e);
    }
    let mut n = 0;
    for event in l.events.iter() {
        n += 1;
        if event.is_readable() {
            cb(event.token().0 as u32);
        }
    }
    unsafe { *events = n };
    0
}

extern "C" fn mio_free(p: *mut c_void) {
    drop(unsafe { Box::from_raw(p as *mut MioLoop) });
}

// polling 2: oneshot, as polling 2 always is: each event must be re-armed
// with Poller::modify, one epoll_ctl per event, which is this crate's cost.

struct PollingLoop {
    poller: polling::Poller,
    events: Vec<polling::Event>,
    fds: Vec<c_int>, // by pair index, for the re-arming
}

extern "C" fn polling_new(error: *mut c_int) -> *mut c_void {
    make(
        polling::Poller::new().map(|poller| PollingLoop { poller, events: Vec::with_capacity(CAPACITY), fds: Vec::new() }),
        error,
    )
}

extern "C" fn polling_add_all(p: *mut c_void, fds: *const c_int, pairs: u32) -> c_int {
    let l = unsafe { &mut *(p as *mut PollingLoop) };
    let fds = unsafe { std::slice::from_raw_parts(fds, 2 * pairs as usize) };
    for i in 0..pairs as usize {
        let fd = fds[2 * i];
        l.fds.push(fd);
        if let Err(e) = l.poller.add(fd, polling::Event::readable(i)) {
            return errno(&e);
        }
    }
    0
}

extern "C" fn polling_poll(p: *mut c_void, timeout_ms: c_int, cb: Callback, events: *mut u32) -> c_int {
    let l = unsafe { &mut *(p as *mut PollingLoop) };
    l.events.clear();
    if let Err(e) = l.poller.wait(&mut l.events, timeout(timeout_ms)) {
        return errno(&e);
    }
    for event in &l.events {
        if event.readable {
            cb(event.key as u32);
        }
        if let Err(e) = l.poller.modify(l.fds[event.key], polling::Event::readable(event.key)) {
            return errno(&e);
        }
    }
    unsafe { *events = l.events.len() as u32 };
    0
}

extern "C" fn polling_free(p: *mut c_void) {
    drop(unsafe { Box::from_raw(p as *mut PollingLoop) });
}
