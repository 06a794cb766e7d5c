//! reaper's own environment, read in place: `std::env::vars_os()` copies every variable
//! (two allocations each, ~60,000 instructions for 40 variables under musl's malloc) and
//! `std::env::var_os` scans the whole environment for each name asked for; `options` wants a
//! handful of names out of all of them, once.

use std::ffi::{CStr, OsStr, c_char};
use std::os::unix::ffi::OsStrExt;

unsafe extern "C" {
    static environ: *const *const c_char;
}

/// Each variable's name and value, in the environment's order, as `std::env::vars_os` sees
/// them (an entry without a `=` after its first byte is left out, as std does). `'static`:
/// nothing in reaper changes its environment (no `set_var`, no `putenv`), so the C library's
/// strings stay put for the life of the process.
pub fn entries() -> impl Iterator<Item = (&'static OsStr, &'static OsStr)> {
    raw().map(|(_, k, v)| (OsStr::from_bytes(k), OsStr::from_bytes(v)))
}

/// reaper's environment block itself, for a command whose environment is reaper's unchanged
/// (spawn): no copy of the pointer array to make.
pub fn block() -> *const *const c_char {
    // SAFETY: reading the C library's pointer, which nothing in reaper changes (above).
    unsafe { environ }
}

/// How many entries the block holds, those [`raw`] leaves out too.
pub fn len() -> usize {
    let at = block();
    if at.is_null() {
        return 0;
    }
    let mut n = 0;
    // SAFETY: as in `raw`: a NULL-terminated array, never changed by reaper; `n` stays
    // within it until its NULL.
    while !unsafe { *at.add(n) }.is_null() {
        n += 1;
    }
    n
}

/// [`entries`] with each entry's own `KEY=VALUE` string, for a command's environment that
/// points into reaper's instead of copying it (spawn).
pub fn raw() -> impl Iterator<Item = (*const c_char, &'static [u8], &'static [u8])> {
    // SAFETY: `environ` is the C library's NULL-terminated array of NUL-terminated strings,
    // never changed by reaper (above); it is read from reaper's one thread.
    let mut at = unsafe { environ };
    std::iter::from_fn(move || {
        if at.is_null() {
            return None;
        }
        // SAFETY: as above; `at` is within the array until its NULL.
        let entry = unsafe { *at };
        if entry.is_null() {
            return None;
        }
        // SAFETY: as above.
        at = unsafe { at.add(1) };
        // SAFETY: a NUL-terminated string of the environment, never freed (above).
        Some((entry, unsafe { CStr::from_ptr(entry) }.to_bytes()))
    })
    .filter_map(|(entry, bytes)| {
        let eq = bytes.get(1..)?.iter().position(|&b| b == b'=')? + 1;
        Some((entry, &bytes[..eq], &bytes[eq + 1..]))
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_entries_are_what_std_sees() {
        let std: Vec<_> = std::env::vars_os().collect();
        let ours: Vec<_> = super::entries().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        assert_eq!(ours, std);
    }
}
