//! A pseudo-terminal for driving `edbx` as a person at a terminal would.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A pseudo-terminal: the master side, and what the program wrote to it so far.
pub struct Terminal {
    master: File,
    screen: Arc<Mutex<String>>,
}

impl Terminal {
    pub fn open() -> (Self, OwnedFd) {
        let (mut master, mut slave) = (0, 0);
        let size = libc::winsize {
            ws_row: 40,
            ws_col: 160,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: openpty writes two descriptors into the given integers; the name and termios
        // arguments may be null.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                &size,
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both descriptors were just opened by openpty and are owned here alone.
        let (master, slave) = unsafe { (File::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        let screen = Arc::new(Mutex::new(String::new()));
        let (mut reader, mut answer) = (master.try_clone().unwrap(), master.try_clone().unwrap());
        let seen = screen.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buffer) {
                if n == 0 {
                    return;
                }
                let text = String::from_utf8_lossy(&buffer[..n]).into_owned();
                // The line editor asks where the cursor is; a terminal answers.
                if text.contains("\x1b[6n") {
                    let _ = answer.write_all(b"\x1b[1;1R");
                }
                seen.lock().unwrap().push_str(&text);
            }
        });
        (Self { master, screen }, slave)
    }

    pub fn send(&mut self, keys: &str) {
        self.master.write_all(keys.as_bytes()).unwrap();
    }

    /// Waits until the screen shows `text` after position `from`; returns where it ends.
    pub fn expect(&self, text: &str, from: usize) -> usize {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            {
                let screen = self.screen.lock().unwrap();
                if let Some(at) = screen.get(from..).and_then(|rest| rest.find(text)) {
                    return from + at + text.len();
                }
                assert!(
                    Instant::now() < deadline,
                    "gave up waiting for {text:?} on the terminal; it shows, from {from}: {:?}",
                    screen.get(from..).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
