//! The request-target normaliser: never panics, and what it accepts is normal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir::proxy::normalize::normalize_path;

fuzz_target!(|data: &[u8]| {
    let Ok(path) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(normal) = normalize_path(path) else {
        return;
    };
    if !path.starts_with('/') {
        // Not a path (`*`): returned as it is.
        assert_eq!(normal, path);
        return;
    }
    // A normal path: rooted, no empty or dot segments (but a trailing slash), ...
    assert!(normal.starts_with('/'), "{path:?} -> {normal:?}");
    assert!(!normal.contains("//"), "{path:?} -> {normal:?}");
    for segment in normal[1..].split('/') {
        assert!(segment != "." && segment != "..", "{path:?} -> {normal:?}");
    }
    // ... that normalising again leaves alone, ...
    let again = normalize_path(&normal).unwrap_or_else(|e| panic!("{normal:?} rejected: {e}"));
    assert_eq!(again, normal, "{path:?}");
    // ... and that is still a valid URI path whenever the input was.
    if http::uri::PathAndQuery::try_from(path).is_ok() && !path.contains(['?', '#']) {
        http::uri::PathAndQuery::try_from(&*normal)
            .unwrap_or_else(|e| panic!("{path:?} -> {normal:?}: {e}"));
    }
});
