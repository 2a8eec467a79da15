//! The shortcut argument parser and what factories read from it: one byte picks the shortcut
//! kind, the rest is `Name=v1,v2,...` as written in YAML.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_predicates::{parse_duration, parse_size, Args, Shortcut};

const KINDS: [Shortcut; 5] = [
    Shortcut::Fields(&[]),
    Shortcut::Fields(&["name", "value"]),
    Shortcut::Fields(&["status", "url", "includeRequestParams"]),
    Shortcut::GatherList("methods"),
    Shortcut::GatherListTailFlag("patterns", "matchTrailingSlash"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let shortcut = KINDS[kind as usize % KINDS.len()];
    let (factory, values) = text.split_once('=').unwrap_or((text, ""));
    // As the config loader does: split on commas, trim, drop empty values.
    let values: Vec<String> = values
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .collect();
    let count = values.len();
    let args = match Args::shortcut(factory, shortcut, values.clone()) {
        Ok(args) => args,
        Err(e) => {
            assert!(
                matches!(shortcut, Shortcut::Fields(names) if names.len() < count),
                "{e}"
            );
            return;
        }
    };
    let _ = args.display();
    let _ = args.fingerprint();
    for name in shortcut.names() {
        let _ = args.get(name);
        let _ = args.list(name);
        let _ = args.require(name);
        let _ = args.flag(name, true);
        let _ = args.duration(name);
        let _ = args.size(name);
        let _ = args.parse::<u16>(name, "a number");
    }
    let _ = args.require("misspelt");
    let _ = args.finish();
    for value in &values {
        let _ = parse_duration(value);
        let _ = parse_size(value);
        let _ = weir::config::millis_or_duration(value);
    }
});
