//! The date-time values of `After`, `Before` and `Between`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::ArgError;

/// Parses an ISO-8601 date-time with an offset, as SCG writes it
/// (`2017-01-20T17:42:47.789-07:00[America/Denver]`; the bracketed zone is informative), or
/// milliseconds since the Unix epoch.
pub fn parse_datetime(arg: &str, text: &str) -> Result<SystemTime, ArgError> {
    let t = text.trim();
    if let Ok(millis) = t.parse::<i64>() {
        let d = Duration::from_millis(millis.unsigned_abs());
        return Ok(if millis >= 0 {
            UNIX_EPOCH + d
        } else {
            UNIX_EPOCH - d
        });
    }
    let without_zone = match t.find('[') {
        Some(i) if t.ends_with(']') => &t[..i],
        _ => t,
    };
    without_zone.parse::<jiff::Timestamp>().map(SystemTime::from).map_err(|_| {
        ArgError::for_arg(
            arg,
            format!("expected a date-time with an offset such as `2017-01-20T17:42:47.789-07:00[America/Denver]`, or epoch milliseconds; found `{text}`"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_scg_forms() {
        let a = parse_datetime("d", "2017-01-20T17:42:47.789-07:00[America/Denver]").unwrap();
        let b = parse_datetime("d", "1484959367789").unwrap();
        assert_eq!(a, b);
        assert_eq!(parse_datetime("d", "2017-01-21T00:42:47.789Z").unwrap(), a);
        assert!(parse_datetime("d", "yesterday").is_err());
        assert!(parse_datetime("d", "2017-01-20T17:42:47").is_err());
    }
}
