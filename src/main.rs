//! Entry point. `no_main`: the Rust runtime's start-up would set SIGPIPE to ignored before
//! we could record it, and the command must inherit exactly what reaper inherited.
#![no_main]
#![deny(clippy::unwrap_used, clippy::expect_used)]

use std::ffi::{CStr, OsString, c_char, c_int};
use std::os::unix::ffi::OsStrExt;

#[unsafe(no_mangle)]
/// # Safety
/// Called only by the C runtime, with its argc/argv.
pub unsafe extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    // Before anything else: no signal may be acted on or lost before the signalfd exists.
    let mask = match reaper::sigmask::block_all() {
        Ok(mask) => mask,
        Err(e) => {
            eprintln!("reaper: cannot block signals: {}", reaper::error::os(e));
            return 1;
        }
    };
    let args = (0..argc.max(0) as usize)
        // SAFETY: the C runtime passes argc valid NUL-terminated strings in argv.
        .map(|i| unsafe { CStr::from_ptr(*argv.add(i)) })
        .map(|a| OsString::from(std::ffi::OsStr::from_bytes(a.to_bytes())))
        .collect();
    let code = reaper::main(args, mask);
    std::process::exit(code)
}
