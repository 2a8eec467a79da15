//! The circuit breaker's state machine: closed, open, half-open, over a count- or time-based
//! sliding window. Lock-free: every field is an atomic, and recording an outcome is a few
//! atomic operations.
//!
//! ```text
//!            failure rate ≥ threshold (after minimum calls)
//!   CLOSED ───────────────────────────────────────────────► OPEN
//!     ▲                                                      │ wait-duration-in-open-state
//!     │ probes pass                                          ▼
//!     └──────────────────────────── HALF-OPEN ◄──────────────┘
//!                                      │ probes fail
//!                                      └──────────────► OPEN
//! ```

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::time::{Duration, Instant};

/// How the breaker judges one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Succeeded in time.
    Success,
    /// Succeeded, but slower than the slow-call threshold.
    Slow,
    /// Failed (connect error, timeout, or a configured status).
    Failure,
    /// Failed and was slow.
    SlowFailure,
}

impl Outcome {
    fn bits(self) -> u8 {
        match self {
            Outcome::Success => 1,
            Outcome::Slow => 1 | 4,
            Outcome::Failure => 1 | 2,
            Outcome::SlowFailure => 1 | 2 | 4,
        }
    }

    /// Whether the call failed.
    pub fn failed(self) -> bool {
        matches!(self, Outcome::Failure | Outcome::SlowFailure)
    }
}

/// The breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Calls pass; outcomes are recorded.
    Closed,
    /// Calls are rejected until the wait is over.
    Open,
    /// A limited number of probe calls pass.
    HalfOpen,
}

impl State {
    /// The state's name, as the admin API shows it.
    pub fn name(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half_open",
        }
    }

    /// The value of the `weir_circuit_breaker_state` gauge: 0 closed, 1 open, 2 half-open.
    pub fn gauge(self) -> i64 {
        match self {
            State::Closed => 0,
            State::Open => 1,
            State::HalfOpen => 2,
        }
    }
}

/// How the sliding window is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// The last N calls.
    Count(u32),
    /// The calls of the last N seconds.
    Time(u32),
}

/// The breaker's settings (Resilience4j's names and defaults, except the time limit).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The sliding window (default the last 100 calls).
    pub window: Window,
    /// Calls needed in the window before the rates are judged (default 100).
    pub minimum_calls: u32,
    /// Failure rate, in percent, that opens the breaker (default 50).
    pub failure_rate_threshold: f64,
    /// How long the breaker stays open (default 60 s).
    pub wait_in_open: Duration,
    /// Probe calls let through when half-open (default 10).
    pub half_open_calls: u32,
    /// A call slower than this counts as slow (default: none).
    pub slow_call_duration: Option<Duration>,
    /// Slow-call rate, in percent, that opens the breaker (default 100).
    pub slow_call_rate_threshold: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            window: Window::Count(100),
            minimum_calls: 100,
            failure_rate_threshold: 50.0,
            wait_in_open: Duration::from_secs(60),
            half_open_calls: 10,
            slow_call_duration: None,
            slow_call_rate_threshold: 100.0,
        }
    }
}

const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const HALF_OPEN: u8 = 2;

/// Per-second counters of the time-based window.
#[derive(Default)]
struct Bucket {
    second: AtomicU64,
    calls: AtomicU32,
    failures: AtomicU32,
    slow: AtomicU32,
}

/// Calls counted by outcome, since the breaker was created.
#[derive(Default, Debug)]
pub struct Counters {
    /// Calls that succeeded.
    pub successful: AtomicU64,
    /// Calls that failed.
    pub failed: AtomicU64,
    /// Calls that were slow.
    pub slow: AtomicU64,
    /// Calls rejected because the breaker was open.
    pub rejected: AtomicU64,
}

/// One circuit breaker.
pub struct Breaker {
    name: String,
    settings: Settings,
    epoch: Instant,
    state: AtomicU8,
    /// When the breaker opened, in milliseconds since `epoch`.
    opened_at: AtomicU64,
    // Count-based window: one slot per call, and running totals.
    slots: Vec<AtomicU8>,
    next: AtomicU64,
    // Time-based window.
    buckets: Vec<Bucket>,
    failures: AtomicU32,
    slow: AtomicU32,
    // Half-open probes.
    probes_left: AtomicU32,
    probes_done: AtomicU32,
    probe_failures: AtomicU32,
    probe_slow: AtomicU32,
    /// Outcome counters, for metrics.
    pub counters: Counters,
}

impl Breaker {
    /// A closed breaker called `name`.
    pub fn new(name: &str, settings: Settings) -> Self {
        let (slots, buckets) = match settings.window {
            Window::Count(n) => (
                (0..n.max(1)).map(|_| AtomicU8::new(0)).collect(),
                Vec::new(),
            ),
            Window::Time(n) => (
                Vec::new(),
                (0..n.max(1)).map(|_| Bucket::default()).collect(),
            ),
        };
        Self {
            name: name.to_string(),
            settings,
            epoch: Instant::now(),
            state: AtomicU8::new(CLOSED),
            opened_at: AtomicU64::new(0),
            slots,
            next: AtomicU64::new(0),
            buckets,
            failures: AtomicU32::new(0),
            slow: AtomicU32::new(0),
            probes_left: AtomicU32::new(0),
            probes_done: AtomicU32::new(0),
            probe_failures: AtomicU32::new(0),
            probe_slow: AtomicU32::new(0),
            counters: Counters::default(),
        }
    }

    /// The breaker's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// The current state (an open breaker whose wait is over reads as half-open).
    pub fn state(&self) -> State {
        match self.state.load(Ordering::Acquire) {
            CLOSED => State::Closed,
            HALF_OPEN => State::HalfOpen,
            _ if self.wait_over() => State::HalfOpen,
            _ => State::Open,
        }
    }

    fn wait_over(&self) -> bool {
        self.now_ms()
            .saturating_sub(self.opened_at.load(Ordering::Acquire))
            >= self.settings.wait_in_open.as_millis() as u64
    }

    /// Asks to make a call. `Some(permit)` means go ahead and report the outcome with
    /// [`Breaker::record`]; `None` means the breaker is open: answer without calling.
    pub fn try_acquire(&self) -> Option<Permit> {
        loop {
            match self.state.load(Ordering::Acquire) {
                CLOSED => return Some(Permit { probe: false }),
                OPEN => {
                    if !self.wait_over() {
                        self.counters.rejected.fetch_add(1, Ordering::Relaxed);
                        return None;
                    }
                    // The wait is over: the first caller moves the breaker to half-open.
                    if self
                        .state
                        .compare_exchange(OPEN, HALF_OPEN, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                    {
                        self.probe_failures.store(0, Ordering::Relaxed);
                        self.probe_slow.store(0, Ordering::Relaxed);
                        self.probes_done.store(0, Ordering::Relaxed);
                        self.probes_left
                            .store(self.settings.half_open_calls.max(1), Ordering::Release);
                    }
                }
                _ => {
                    let taken =
                        self.probes_left
                            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                                n.checked_sub(1)
                            });
                    return match taken {
                        Ok(_) => Some(Permit { probe: true }),
                        Err(_) => {
                            self.counters.rejected.fetch_add(1, Ordering::Relaxed);
                            None
                        }
                    };
                }
            }
        }
    }

    /// Whether calls must be timed: only to find slow ones, when a slow-call threshold is set.
    pub fn times_calls(&self) -> bool {
        self.settings.slow_call_duration.is_some()
    }

    /// Classifies a call by its failure and duration.
    pub fn outcome(&self, failed: bool, elapsed: Duration) -> Outcome {
        let slow = self
            .settings
            .slow_call_duration
            .is_some_and(|limit| elapsed >= limit);
        match (failed, slow) {
            (false, false) => Outcome::Success,
            (false, true) => Outcome::Slow,
            (true, false) => Outcome::Failure,
            (true, true) => Outcome::SlowFailure,
        }
    }

    /// Gives back a permit whose call never finished (the client went away), so that a
    /// half-open breaker does not wait for a probe that will never report.
    pub fn cancel(&self, permit: Permit) {
        if permit.probe && self.state.load(Ordering::Acquire) == HALF_OPEN {
            self.probes_left.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Records the outcome of a call made with `permit`.
    pub fn record(&self, permit: Permit, outcome: Outcome) {
        match outcome {
            Outcome::Success => &self.counters.successful,
            Outcome::Slow => &self.counters.slow,
            Outcome::Failure | Outcome::SlowFailure => &self.counters.failed,
        }
        .fetch_add(1, Ordering::Relaxed);
        if permit.probe {
            self.record_probe(outcome);
        } else if self.state.load(Ordering::Acquire) == CLOSED {
            self.record_closed(outcome);
        }
    }

    fn record_probe(&self, outcome: Outcome) {
        if outcome.failed() {
            self.probe_failures.fetch_add(1, Ordering::AcqRel);
        }
        if matches!(outcome, Outcome::Slow | Outcome::SlowFailure) {
            self.probe_slow.fetch_add(1, Ordering::AcqRel);
        }
        let done = self.probes_done.fetch_add(1, Ordering::AcqRel) + 1;
        let total = self.settings.half_open_calls.max(1);
        if done < total {
            return;
        }
        let failures = self.probe_failures.load(Ordering::Acquire);
        let slow = self.probe_slow.load(Ordering::Acquire);
        if self.exceeds(failures, slow, done) {
            self.open(HALF_OPEN);
        } else if self
            .state
            .compare_exchange(HALF_OPEN, CLOSED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.reset_window();
            tracing::info!(breaker = %self.name, "circuit breaker closed");
        }
    }

    fn exceeds(&self, failures: u32, slow: u32, calls: u32) -> bool {
        let calls = f64::from(calls.max(1));
        f64::from(failures) * 100.0 / calls >= self.settings.failure_rate_threshold
            || (self.settings.slow_call_duration.is_some()
                && f64::from(slow) * 100.0 / calls >= self.settings.slow_call_rate_threshold)
    }

    fn open(&self, from: u8) {
        // The time is set before the state: a caller that sees OPEN must see when it opened,
        // not an earlier opening whose wait is long over (it would go half-open at once).
        // `fetch_max`, so that a caller that loses the race never moves it back.
        self.opened_at.fetch_max(self.now_ms(), Ordering::AcqRel);
        if self
            .state
            .compare_exchange(from, OPEN, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            tracing::warn!(
                breaker = %self.name,
                from = if from == CLOSED { "closed" } else { "half_open" },
                wait_ms = self.settings.wait_in_open.as_millis() as u64,
                "circuit breaker opened"
            );
        }
    }

    fn record_closed(&self, outcome: Outcome) {
        let bits = outcome.bits();
        let (calls, failures, slow) = match self.settings.window {
            Window::Count(_) => {
                let n = self.slots.len() as u64;
                let i = self.next.fetch_add(1, Ordering::AcqRel);
                let old = self.slots[(i % n) as usize].swap(bits, Ordering::AcqRel);
                let failures = adjust(&self.failures, old & 2 != 0, bits & 2 != 0);
                let slow = adjust(&self.slow, old & 4 != 0, bits & 4 != 0);
                ((i + 1).min(n) as u32, failures, slow)
            }
            Window::Time(_) => {
                let second = self.now_ms() / 1000 + 1;
                let n = self.buckets.len() as u64;
                let bucket = &self.buckets[(second % n) as usize];
                let seen = bucket.second.load(Ordering::Acquire);
                if seen != second
                    && bucket
                        .second
                        .compare_exchange(seen, second, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                {
                    bucket.calls.store(0, Ordering::Release);
                    bucket.failures.store(0, Ordering::Release);
                    bucket.slow.store(0, Ordering::Release);
                }
                bucket.calls.fetch_add(1, Ordering::AcqRel);
                if bits & 2 != 0 {
                    bucket.failures.fetch_add(1, Ordering::AcqRel);
                }
                if bits & 4 != 0 {
                    bucket.slow.fetch_add(1, Ordering::AcqRel);
                }
                let live = self
                    .buckets
                    .iter()
                    .filter(|b| b.second.load(Ordering::Acquire) + n > second);
                live.fold((0, 0, 0), |(c, f, s), b| {
                    (
                        c + b.calls.load(Ordering::Acquire),
                        f + b.failures.load(Ordering::Acquire),
                        s + b.slow.load(Ordering::Acquire),
                    )
                })
            }
        };
        if calls >= self.settings.minimum_calls.max(1) && self.exceeds(failures, slow, calls) {
            self.open(CLOSED);
        }
    }

    fn reset_window(&self) {
        for slot in &self.slots {
            slot.store(0, Ordering::Release);
        }
        for bucket in &self.buckets {
            bucket.second.store(0, Ordering::Release);
        }
        self.next.store(0, Ordering::Release);
        self.failures.store(0, Ordering::Release);
        self.slow.store(0, Ordering::Release);
    }
}

/// Adjusts a running total when a window slot changes from `was` to `now`; returns the total.
fn adjust(total: &AtomicU32, was: bool, now: bool) -> u32 {
    match (was, now) {
        (false, true) => total.fetch_add(1, Ordering::AcqRel) + 1,
        (true, false) => total.fetch_sub(1, Ordering::AcqRel).saturating_sub(1),
        _ => total.load(Ordering::Acquire),
    }
}

/// Permission to make one call.
#[derive(Debug, Clone, Copy)]
#[must_use = "report the call's outcome with Breaker::record"]
pub struct Permit {
    probe: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            window: Window::Count(10),
            minimum_calls: 4,
            failure_rate_threshold: 50.0,
            wait_in_open: Duration::from_millis(0),
            half_open_calls: 2,
            ..Settings::default()
        }
    }

    fn call(b: &Breaker, failed: bool) -> bool {
        match b.try_acquire() {
            Some(p) => {
                b.record(
                    p,
                    if failed {
                        Outcome::Failure
                    } else {
                        Outcome::Success
                    },
                );
                true
            }
            None => false,
        }
    }

    #[test]
    fn opens_after_threshold_and_closes_after_good_probes() {
        let b = Breaker::new(
            "t",
            Settings {
                wait_in_open: Duration::from_secs(3600),
                ..settings()
            },
        );
        assert!(call(&b, false));
        assert!(call(&b, true));
        assert!(call(&b, false));
        assert_eq!(b.state(), State::Closed);
        assert!(call(&b, true)); // 2 of 4 failed: 50%
        assert_eq!(b.state(), State::Open);
        assert!(!call(&b, false));
        assert_eq!(b.counters.rejected.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn half_open_lets_the_configured_probes_through() {
        let b = Breaker::new("t", settings());
        for _ in 0..4 {
            call(&b, true);
        }
        // Wait of 0: the next acquire moves to half-open and takes a probe.
        let p1 = b.try_acquire().expect("probe 1");
        let p2 = b.try_acquire().expect("probe 2");
        assert!(b.try_acquire().is_none(), "only two probes");
        b.record(p1, Outcome::Success);
        b.record(p2, Outcome::Success);
        assert_eq!(b.state(), State::Closed);
        for _ in 0..4 {
            call(&b, true);
        }
        let p1 = b.try_acquire().unwrap();
        let p2 = b.try_acquire().unwrap();
        b.record(p1, Outcome::Failure);
        b.record(p2, Outcome::Success);
        assert_ne!(b.state(), State::Closed, "a failed probe (50%) reopens");
    }

    #[test]
    fn slow_calls_open_when_configured() {
        let b = Breaker::new(
            "t",
            Settings {
                slow_call_duration: Some(Duration::from_millis(10)),
                slow_call_rate_threshold: 50.0,
                wait_in_open: Duration::from_secs(3600),
                ..settings()
            },
        );
        for _ in 0..4 {
            let p = b.try_acquire().unwrap();
            b.record(p, b.outcome(false, Duration::from_millis(20)));
        }
        assert_eq!(b.state(), State::Open);
    }

    #[test]
    fn time_window_counts_recent_calls() {
        let b = Breaker::new(
            "t",
            Settings {
                window: Window::Time(10),
                wait_in_open: Duration::from_secs(3600),
                ..settings()
            },
        );
        for _ in 0..3 {
            call(&b, false);
        }
        assert_eq!(b.state(), State::Closed);
        for _ in 0..3 {
            call(&b, true);
        }
        assert_eq!(b.state(), State::Open);
    }
}
