//! Link step of the `weir` binary.
//!
//! The binary is position-independent, so the dynamic loader relocates every pointer in its
//! read-only data at start-up. Written as one `R_X86_64_RELATIVE` entry each (24 bytes), those
//! relocations took 458 KiB, all of it read at start-up and resident for the process's life:
//! 5% of the idle RSS that issue #8 keeps under 10 MiB. `-z pack-relative-relocs` (DT_RELR,
//! GNU ld 2.38+, glibc 2.36+) writes them as bitmaps of a few KiB instead. A linker that does
//! not know the option warns and ignores it; the binary is then as before.

fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.contains("linux-gnu") {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
