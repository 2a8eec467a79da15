//! The raw framing scanner: never panics, and finds the same thing however the bytes are
//! split into reads.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir::proxy::raw_framing::scan_reads;

fuzz_target!(|data: &[u8]| {
    let Some((&step, wire)) = data.split_first() else {
        return;
    };
    let whole = scan_reads([wire], 8);
    let pieces = scan_reads(wire.chunks(usize::from(step).max(1)), 8);
    assert_eq!(whole, pieces, "split every {step} bytes");
});
