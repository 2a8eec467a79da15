//! `LoadBalancer`: how an `lb://` route picks an instance of its service.
//!
//! ```yaml
//! - LoadBalancer=least-requests
//! - name: LoadBalancer
//!   args:
//!     strategy: weighted
//!     use404: true        # answer 404 rather than 503 when no instance is healthy
//! ```
//! Strategies: `round-robin` (the default, also without the filter), `random`,
//! `least-requests` (the less busy of two random instances), `weighted` (random in proportion
//! to the instances' weights). On a route whose uri is not `lb://` the filter has no effect.

use std::sync::Arc;

use http::Response;

use crate::{
    ArgError, Args, Balance, Body, EditFilter, Exchange, Filter, FilterContext, FilterFactory,
    Shortcut, Strategy,
};

/// Builds [`LoadBalancer`].
pub struct LoadBalancerFactory;

impl FilterFactory for LoadBalancerFactory {
    fn name(&self) -> &'static str {
        "LoadBalancer"
    }

    fn shortcut(&self) -> Shortcut {
        Shortcut::Fields(&["strategy", "use404"])
    }

    fn build(&self, args: &Args, _: &FilterContext<'_>) -> Result<Filter, ArgError> {
        let strategy = match args.get("strategy").map(|s| s.trim().to_ascii_lowercase().replace('_', "-")) {
            None => Strategy::RoundRobin,
            Some(s) => match s.as_str() {
                "round-robin" | "roundrobin" => Strategy::RoundRobin,
                "random" => Strategy::Random,
                "least-requests" | "leastrequests" | "least-request" => Strategy::LeastRequests,
                "weighted" => Strategy::Weighted,
                _ => {
                    return Err(ArgError::for_arg(
                        "strategy",
                        format!("`{s}` is not a strategy; write round-robin, random, least-requests or weighted"),
                    ))
                }
            },
        };
        let use404 = args.flag("use404", false)?;
        Ok(Filter::Edit(Arc::new(LoadBalancer {
            balance: Balance { strategy, use404 },
        })))
    }
}

/// Marks the exchange with the route's balancing choice.
#[derive(Debug)]
pub struct LoadBalancer {
    balance: Balance,
}

impl EditFilter for LoadBalancer {
    fn request(&self, exchange: &mut Exchange) -> Result<(), Response<Body>> {
        exchange.balance = self.balance;
        Ok(())
    }

    fn edits_response(&self) -> bool {
        false
    }
}
