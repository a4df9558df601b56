//! Spawning the long-running server process.
//!
//! On Linux the server gets `PR_SET_PDEATHSIG = SIGTERM`, so it shuts down when the test process
//! dies without running destructors (killed test binary, `std::process::exit`, a `TestServer` in a
//! `static`). The death signal fires when the *thread* that forked the child exits, so all servers
//! are forked from one helper thread that lives as long as the process.

use std::io;
use std::process::{Child, Command};

#[cfg(target_os = "linux")]
pub(crate) fn spawn_server(mut cmd: Command) -> io::Result<Child> {
    use std::os::unix::process::CommandExt;
    use std::sync::OnceLock;
    use std::sync::mpsc;

    type Job = (Command, mpsc::Sender<io::Result<Child>>);
    static SPAWNER: OnceLock<mpsc::Sender<Job>> = OnceLock::new();

    let parent = std::process::id();
    // SAFETY: the closure only calls async-signal-safe functions (prctl, getppid) and builds
    // errors without allocating.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect.
            if libc::getppid() as u32 != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }

    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("edbx-testkit-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("spawn edbx-testkit spawner thread");
        tx
    });

    let (reply_tx, reply_rx) = mpsc::channel();
    spawner
        .send((cmd, reply_tx))
        .map_err(|_| io::Error::other("edbx-testkit spawner thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| io::Error::other("edbx-testkit spawner thread is gone"))?
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn spawn_server(mut cmd: Command) -> io::Result<Child> {
    cmd.spawn()
}

/// Sends SIGTERM (graceful shutdown) to `pid`.
#[cfg(unix)]
pub(crate) fn terminate(pid: u32) -> io::Result<()> {
    signal(pid, libc::SIGTERM)
}

/// Sends `sig` to a child we own.
#[cfg(unix)]
pub(crate) fn signal(pid: u32, sig: libc::c_int) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(io::Error::other)?;
    // SAFETY: plain syscall on a pid we own (the child is not reaped yet, so it cannot be reused).
    if unsafe { libc::kill(pid, sig) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// No SIGTERM outside Unix; the caller falls back to killing.
#[cfg(not(unix))]
pub(crate) fn terminate(_pid: u32) -> io::Result<()> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}
