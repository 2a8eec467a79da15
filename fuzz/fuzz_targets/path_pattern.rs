//! The Path pattern compiler and matcher: a pattern line, then paths to match, one a line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_predicates::path::PathPattern;
use weir_predicates::Captures;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let Some(pattern) = lines.next() else {
        return;
    };
    let Ok(pattern) = PathPattern::parse(pattern) else {
        return;
    };
    let _ = pattern.as_str();
    let variables = pattern.variables();
    let prefix = pattern.literal_segments();
    for path in lines {
        for trailing in [true, false] {
            let mut captures = Captures::default();
            if pattern.matches(path, trailing, &mut captures) {
                // Every capture is one of the pattern's variables, and a match starts with
                // the pattern's literal segments.
                for (name, _) in captures.iter() {
                    assert!(variables.iter().any(|v| v == name), "{name}");
                }
                let segments: Vec<&str> = path[1..].split('/').collect();
                assert!(
                    segments.len() >= prefix.len()
                        && prefix.iter().zip(&segments).all(|(p, s)| p == s),
                    "{path:?} matched {:?} without its prefix {prefix:?}",
                    pattern.as_str()
                );
            } else {
                assert!(captures.is_empty());
            }
        }
    }
});
