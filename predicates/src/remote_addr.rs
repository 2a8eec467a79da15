//! `RemoteAddr`: matches the TCP peer's address against IP addresses and CIDR ranges.
//!
//! ```yaml
//! - RemoteAddr=192.168.1.1/24, ::1
//! ```
//! An address without a prefix length matches that address only (`/32` or `/128`).

use std::net::IpAddr;

use ipnet::IpNet;

use crate::{
    ArgError, Args, BuildContext, Captures, Predicate, PredicateFactory, RequestView, Shortcut,
};

/// Builds [`RemoteAddrPredicate`].
pub struct RemoteAddrFactory;

impl PredicateFactory for RemoteAddrFactory {
    fn name(&self) -> &'static str {
        "RemoteAddr"
    }

    fn shortcut(&self) -> Shortcut {
        Shortcut::GatherList("sources")
    }

    fn build(&self, args: &Args, _: &mut BuildContext<'_>) -> Result<Box<dyn Predicate>, ArgError> {
        let sources = args.list("sources");
        if sources.is_empty() {
            return Err(ArgError::for_arg(
                "sources",
                "at least one address or range is required, e.g. `RemoteAddr=10.0.0.0/8`",
            ));
        }
        let nets = sources
            .into_iter()
            .map(|s| parse_net(s).map_err(|e| ArgError::for_arg("sources", e)))
            .collect::<Result<_, _>>()?;
        Ok(Box::new(RemoteAddrPredicate { nets }))
    }
}

/// Parses an IP address or CIDR range (`10.0.0.0/8`, `::1`); a bare address is a one-address
/// range.
pub fn parse_net(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("`{text}` is not an IP address or CIDR range such as `10.0.0.0/8`"))
}

/// Whether `ip` falls in any of `nets`; an IPv4-mapped IPv6 address counts as IPv4.
pub fn contains(nets: &[IpNet], ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    nets.iter().any(|n| n.contains(&ip))
}

/// Matches when the peer's address is in one of the ranges.
#[derive(Debug)]
pub struct RemoteAddrPredicate {
    nets: Vec<IpNet>,
}

impl Predicate for RemoteAddrPredicate {
    fn test(&self, request: &RequestView<'_>, _: &mut Captures) -> bool {
        contains(&self.nets, request.remote.ip())
    }
}
