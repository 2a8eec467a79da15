//! weir's end-to-end tests: real sockets on 127.0.0.1, an echoing origin server, the gateway
//! in process or as the real binary. One test binary, to keep link time down.

mod backend;
mod fake_provider;
mod support;

mod admin;
mod async_queue;
mod balancing;
mod circuit_breaker;
mod cli;
mod config_errors;
mod failures;
mod filters;
mod forwarding;
mod health;
mod hostile;
mod openfaas;
mod pool;
mod predicates;
mod prometheus;
mod reload;
mod resilience_reload;
mod retry;
mod routing;
mod secrets;
mod server;
mod shutdown;
mod streaming;
mod timeouts;
mod tls;
mod upstream_http1;
mod websocket;
