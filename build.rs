//! Link step of the `weir` binary.
//!
//! The binary is position-independent, so the dynamic loader relocates every pointer in its
//! read-only data at start-up. Written as one relative relocation each (24 bytes), those took
//! 458 KiB on x86-64, all of it read at start-up and resident for the process's life: 5% of
//! the idle RSS that issue #8 keeps under 10 MiB. `-z pack-relative-relocs` (DT_RELR; GNU ld
//! 2.38+, lld 15+) writes them as bitmaps of a few KiB instead.
//!
//! The cost: linked against glibc 2.36 or later, the binary needs glibc 2.36 or later to run
//! (it asks for the `GLIBC_ABI_DT_RELR` version), so one built on a newer system does not start
//! on, say, Debian 11 or Ubuntu 22.04. Set `WEIR_NO_RELR=1` when building for such a system;
//! the relocations are then written out in full, as before. A linker that does not know the
//! option warns and ignores it.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=WEIR_NO_RELR");
    let target = std::env::var("TARGET").unwrap_or_default();
    let opted_out = std::env::var_os("WEIR_NO_RELR").is_some_and(|v| !v.is_empty() && v != "0");
    if target.contains("linux-gnu") && !opted_out {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
