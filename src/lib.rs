//! weir: a declarative API gateway in the style of Spring Cloud Gateway.
//!
//! A YAML file of routes is loaded ([`config`]), compiled into a route table of predicates and
//! tower filter chains ([`compile`]), and served ([`Gateway`]). Predicates and filters are
//! written against the `weir-predicates` and `weir-filters` crates; custom ones are registered
//! with [`GatewayBuilder::predicate`] and [`GatewayBuilder::filter`].

pub mod admin;
#[allow(unsafe_code)] // A global allocator cannot be written without it.
pub mod alloc;
pub mod check;
pub mod compile;
pub mod config;
mod gateway;
pub mod metrics;
pub mod openfaas;
pub mod proxy;
pub mod queue;
pub mod reload;
pub mod server;

pub use gateway::{Gateway, GatewayBuilder, RunningGateway, Shared, StartError};
