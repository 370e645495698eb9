//! One shared request budget per Okta org, learned from Okta's answers.
//!
//! Okta counts an org's calls in windows and says, on every answer, `X-Rate-Limit-Limit` (calls
//! per window), `X-Rate-Limit-Remaining` (left in this window) and `X-Rate-Limit-Reset` (the epoch
//! second the window ends), with `Date` (the org's clock). Every clone of an
//! [`OktaClient`](super::OktaClient) shares one [`Pacer`], so concurrent callers — a bulk job's
//! tasks and interactive calls alike — spend one budget:
//!
//! - Before each request a caller reserves a slot ([`Budget::reserve`]). A slot is free while
//!   `Remaining − in flight > margin`: `Remaining` is the lowest one reported for the current
//!   window, and calls still in flight are counted against it even when Okta may already have
//!   counted some (conservative: it can only leave a little unused). The margin,
//!   `max(1, ⌈5 % of the limit⌉)` (never the whole limit), is left for other clients of the org
//!   and for calls Okta counts between two answers.
//! - When the window's budget is spent, callers wait until it ends, then start on a fresh window
//!   (assumed full, minus the calls still in flight) until answers say how much is left. Before
//!   anything is known, one call at a time goes out; answers without rate-limit headers turn
//!   pacing off.
//! - When the window ends, by our clock: `arrival + (Reset − Date)` for each answer, the earliest
//!   over the window's answers. `Date` has whole seconds, so a single answer can only make the
//!   wait longer (never shorter) than the truth; the earliest of many is close to it, whatever
//!   the skew between our clock and Okta's. Without `Date`, `Reset` is read on our clock.
//! - A 429 pauses every caller until its reset (at least one second), not only the one that got
//!   it. Answers about a window that has already ended here are ignored.
//! - Callers take turns through a FIFO gate, so none starves while others keep getting slots;
//!   a caller gives up with [`OktaApiError::RateLimited`](super::OktaApiError::RateLimited)
//!   instead of waiting longer than its bound.
//!
//! Okta keeps separate counters per endpoint family; this budget is one per org, as the issue
//! asks, and errs on the careful side: answers about the same window keep the lowest `Remaining`;
//! of two windows (Okta's next one before ours has ended here, another counter, a changed limit)
//! the one with less left is kept until it ends; a 429 from any counter pauses everything.
//!
//! [`Budget`] is the bookkeeping, with time passed in (unit-tested without sleeping); [`Pacer`]
//! puts it behind a lock and waits.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::HeaderMap;

/// Milliseconds since the Unix epoch, by our clock.
pub type Millis = i64;

/// Our clock, in [`Millis`].
fn now_ms() -> Millis {
    chrono::Utc::now().timestamp_millis()
}

/// What one answer said about the rate limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Answer {
    /// The answer was a 429.
    pub rate_limited: bool,
    /// `X-Rate-Limit-Limit`.
    pub limit: Option<u32>,
    /// `X-Rate-Limit-Remaining`.
    pub remaining: Option<u32>,
    /// `X-Rate-Limit-Reset`, epoch seconds.
    pub reset: Option<i64>,
    /// `Date`, epoch seconds (Okta's clock).
    pub date: Option<i64>,
}

impl Answer {
    /// Reads an answer's status and headers; a header that does not parse counts as absent.
    pub fn from_headers(status: u16, headers: &HeaderMap) -> Self {
        fn text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        }
        Self {
            rate_limited: status == 429,
            limit: text(headers, "x-rate-limit-limit").and_then(|v| v.parse().ok()),
            remaining: text(headers, "x-rate-limit-remaining").and_then(|v| v.parse().ok()),
            reset: text(headers, "x-rate-limit-reset").and_then(|v| v.parse().ok()),
            date: text(headers, "date")
                .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok())
                .map(|d| d.timestamp()),
        }
    }
}

/// What a caller should do before sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Send now; a slot is reserved (give it back with [`Budget::finish`]).
    Go,
    /// Nothing left (or paused by a 429) until this time.
    WaitUntil(Millis),
    /// Nothing left, and when the window ends is not known yet: wait for an answer.
    WaitForAnswer,
}

/// The calls per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Limit {
    /// No answer yet: one call at a time.
    Unknown,
    /// Answers carry no rate-limit headers: no pacing.
    Unlimited,
    /// `X-Rate-Limit-Limit`.
    PerWindow(u32),
}

/// What is known about the current window.
#[derive(Debug, Clone, Copy, Default)]
struct Window {
    /// Its `X-Rate-Limit-Reset`; `None` for a fresh window no answer has described yet.
    reset: Option<i64>,
    /// Its `X-Rate-Limit-Limit`, when answers said.
    limit: Option<u32>,
    /// The lowest `X-Rate-Limit-Remaining` reported for it; `None`: the whole limit.
    remaining: Option<u32>,
    /// When it ends, by our clock (the earliest estimate).
    ends_at: Option<Millis>,
}

/// Calls per window left unused: for other clients of the org, and slack for calls counted
/// between two answers. `max(1, ⌈limit / 20⌉)`, and always less than the limit.
pub fn margin(limit: u32) -> u32 {
    if limit <= 1 {
        0
    } else {
        limit.div_ceil(20).clamp(1, limit - 1)
    }
}

/// The shared budget's bookkeeping (no waiting, no clock: time is passed in).
#[derive(Debug)]
pub struct Budget {
    limit: Limit,
    window: Window,
    /// The latest `X-Rate-Limit-Reset` of a window that has ended here: answers about it or an
    /// earlier one are late.
    retired: i64,
    /// Slots reserved and not yet given back (requests on the wire).
    in_flight: u32,
    /// A 429 paused everyone until then.
    paused_until: Option<Millis>,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            limit: Limit::Unknown,
            window: Window::default(),
            retired: i64::MIN,
            in_flight: 0,
            paused_until: None,
        }
    }
}

impl Budget {
    /// Reserves a slot for one request at `now`, or says how long to wait.
    pub fn reserve(&mut self, now: Millis) -> Decision {
        if let Some(until) = self.paused_until {
            if now < until {
                return Decision::WaitUntil(until);
            }
            self.paused_until = None;
        }
        if self.window.ends_at.is_some_and(|end| now >= end) {
            if let Some(r) = self.window.reset {
                self.retired = self.retired.max(r);
            }
            self.window = Window::default();
        }
        let limit = match self.limit {
            Limit::Unlimited => return self.go(),
            Limit::Unknown if self.in_flight == 0 => return self.go(),
            Limit::Unknown => return Decision::WaitForAnswer,
            Limit::PerWindow(n) => self.window.limit.unwrap_or(n),
        };
        let remaining = self.window.remaining.unwrap_or(limit);
        if remaining > self.in_flight.saturating_add(margin(limit)) {
            return self.go();
        }
        match self.window.ends_at {
            Some(end) => Decision::WaitUntil(end),
            None if self.in_flight > 0 => Decision::WaitForAnswer,
            // Nothing on the wire and nothing known against it (a limit of 0): one call to learn.
            None => self.go(),
        }
    }

    fn go(&mut self) -> Decision {
        self.in_flight = self.in_flight.saturating_add(1);
        Decision::Go
    }

    /// Gives back a slot reserved by [`Budget::reserve`], with what Okta answered (`None`: no
    /// answer, e.g. a connection error) at `now`.
    pub fn finish(&mut self, now: Millis, answer: Option<&Answer>) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if let Some(a) = answer {
            self.learn(now, a);
        }
    }

    fn learn(&mut self, now: Millis, a: &Answer) {
        match a.limit {
            Some(n) => self.limit = Limit::PerWindow(n),
            None if self.limit == Limit::Unknown && a.reset.is_none() => {
                self.limit = Limit::Unlimited;
            }
            None => {}
        }
        let Some(reset) = a.reset else {
            if a.rate_limited {
                self.pause(now.saturating_add(1000));
            }
            return;
        };
        let left = match a.date {
            Some(date) => reset.saturating_sub(date).saturating_mul(1000),
            None => reset.saturating_mul(1000).saturating_sub(now),
        };
        let ends_at = now.saturating_add(left);
        if a.rate_limited {
            self.pause(ends_at.max(now.saturating_add(1000)));
        }
        if reset <= self.retired {
            return;
        }
        let remaining = if a.rate_limited { Some(0) } else { a.remaining };
        match self.window.reset {
            Some(r) if reset == r => {
                self.window.remaining = match (self.window.remaining, remaining) {
                    (Some(x), Some(y)) => Some(x.min(y)),
                    (x, y) => x.or(y),
                };
                self.window.ends_at = Some(self.window.ends_at.map_or(ends_at, |e| e.min(ends_at)));
                self.window.limit = a.limit.or(self.window.limit);
            }
            // Another window: Okta's next one (while ours has not ended here yet), another of
            // Okta's counters, or a limit that changed. The tighter one is kept: a next window
            // with more left waits until ours ends; a counter with less left takes over.
            Some(r) => {
                let current = self.window.remaining.or(self.window.limit);
                if remaining.is_some_and(|new| current.is_none_or(|cur| new < cur)) {
                    if r < reset {
                        self.retired = self.retired.max(r);
                    }
                    self.window = Window {
                        reset: Some(reset),
                        limit: a.limit,
                        remaining,
                        ends_at: Some(ends_at),
                    };
                }
            }
            // A fresh window: the first answer about it.
            None => {
                self.window = Window {
                    reset: Some(reset),
                    limit: a.limit,
                    remaining,
                    ends_at: Some(ends_at),
                };
            }
        }
    }

    fn pause(&mut self, until: Millis) {
        self.paused_until = Some(self.paused_until.map_or(until, |p| p.max(until)));
    }

    /// When a caller told to wait at `now` could next expect a slot (for `Retry-After`).
    pub fn opening(&self, now: Millis) -> Option<Millis> {
        [self.paused_until, self.window.ends_at]
            .into_iter()
            .flatten()
            .filter(|t| *t > now)
            .max()
    }

    /// Requests on the wire.
    pub fn in_flight(&self) -> u32 {
        self.in_flight
    }
}

/// How long a caller waiting for an answer sleeps before looking again (an answer wakes it
/// sooner).
const ANSWER_POLL: Duration = Duration::from_millis(250);

struct Shared {
    budget: Mutex<Budget>,
    /// FIFO turns for callers that have to wait (tokio's mutex queues fairly).
    gate: tokio::sync::Mutex<()>,
    /// Woken when a slot is given back.
    answered: tokio::sync::Notify,
}

/// The shared budget of one org, with waiting. Cheap to clone (clones share the budget).
#[derive(Clone)]
pub struct Pacer {
    shared: Arc<Shared>,
}

impl Default for Pacer {
    fn default() -> Self {
        Self {
            shared: Arc::new(Shared {
                budget: Mutex::new(Budget::default()),
                gate: tokio::sync::Mutex::new(()),
                answered: tokio::sync::Notify::new(),
            }),
        }
    }
}

impl std::fmt::Debug for Pacer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pacer").finish_non_exhaustive()
    }
}

/// Whole seconds from `now` to `t`, at least 1.
fn secs_until(now: Millis, t: Millis) -> u64 {
    u64::try_from(t.saturating_sub(now).saturating_add(999) / 1000)
        .unwrap_or(0)
        .max(1)
}

fn millis(d: Millis) -> Duration {
    Duration::from_millis(u64::try_from(d).unwrap_or(0))
}

impl Pacer {
    fn with_budget<T>(&self, f: impl FnOnce(&mut Budget) -> T) -> T {
        // The budget is plain data: a panic elsewhere cannot leave it inconsistent.
        let mut b = self
            .shared
            .budget
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut b)
    }

    /// Waits for a slot. `waited` adds up the time this call has spent waiting on the rate limit
    /// (across its attempts); rather than let it pass `max_wait`, gives up at once with the
    /// seconds until a slot is expected.
    pub async fn acquire(&self, waited: &mut Duration, max_wait: Duration) -> Result<Slot, u64> {
        let queued = tokio::time::Instant::now();
        let gate =
            tokio::time::timeout(max_wait.saturating_sub(*waited), self.shared.gate.lock()).await;
        *waited += queued.elapsed();
        let Ok(_turn) = gate else {
            let now = now_ms();
            return Err(self
                .with_budget(|b| b.opening(now))
                .map_or(1, |t| secs_until(now, t)));
        };
        loop {
            let answered = self.shared.answered.notified();
            tokio::pin!(answered);
            answered.as_mut().enable();
            let now = now_ms();
            match self.with_budget(|b| b.reserve(now)) {
                Decision::Go => {
                    return Ok(Slot {
                        pacer: self.clone(),
                        done: false,
                    });
                }
                Decision::WaitUntil(t) => {
                    let wait = millis(t.saturating_sub(now));
                    if *waited + wait > max_wait {
                        return Err(secs_until(now, t));
                    }
                    tracing::debug!(
                        wait_ms = wait.as_millis(),
                        "Okta rate limit: waiting for the window to reset"
                    );
                    tokio::time::sleep(wait).await;
                    *waited += wait;
                }
                Decision::WaitForAnswer => {
                    if *waited >= max_wait {
                        return Err(1);
                    }
                    let since = tokio::time::Instant::now();
                    let _ = tokio::time::timeout(ANSWER_POLL, answered).await;
                    *waited += since.elapsed();
                }
            }
        }
    }

    /// Requests on the wire now.
    pub fn in_flight(&self) -> u32 {
        self.with_budget(|b| b.in_flight())
    }
}

/// One reserved request. Report the answer with [`Slot::answered`]; dropped without one (an
/// error, a cancelled call), it just gives the slot back.
#[derive(Debug)]
pub struct Slot {
    pacer: Pacer,
    done: bool,
}

impl Slot {
    /// Gives the slot back with what the answer said.
    pub fn answered(mut self, answer: &Answer) {
        self.done = true;
        let now = now_ms();
        self.pacer.with_budget(|b| b.finish(now, Some(answer)));
        if answer.rate_limited {
            tracing::warn!(
                reset = answer.reset,
                "Okta answered 429: every call to this org waits for the reset"
            );
        }
        self.pacer.shared.answered.notify_waiters();
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if !self.done {
            let now = now_ms();
            self.pacer.with_budget(|b| b.finish(now, None));
            self.pacer.shared.answered.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Answer, Budget, Decision, Pacer, margin};

    /// An answer in epoch second `date` for a window ending at `reset`.
    fn ok(limit: u32, remaining: u32, reset: i64, date: i64) -> Answer {
        Answer {
            rate_limited: false,
            limit: Some(limit),
            remaining: Some(remaining),
            reset: Some(reset),
            date: Some(date),
        }
    }

    const T: i64 = 1_700_000_000_000;
    const S: i64 = T / 1000;

    /// A budget that has learned `limit`, with a full window ending at `S + 1` and nothing on
    /// the wire.
    fn learned(limit: u32) -> Budget {
        let mut b = Budget::default();
        assert_eq!(b.reserve(T), Decision::Go);
        b.finish(T + 5, Some(&ok(limit, limit - 1, S + 1, S)));
        b
    }

    #[test]
    fn the_margin_is_five_percent_at_least_one_and_never_the_whole_limit() {
        assert_eq!(margin(0), 0);
        assert_eq!(margin(1), 0);
        assert_eq!(margin(2), 1);
        assert_eq!(margin(10), 1);
        assert_eq!(margin(60), 3);
        assert_eq!(margin(600), 30);
        assert_eq!(margin(601), 31);
    }

    #[test]
    fn before_the_first_answer_one_call_at_a_time() {
        let mut b = Budget::default();
        assert_eq!(b.reserve(T), Decision::Go);
        assert_eq!(b.reserve(T), Decision::WaitForAnswer);
        b.finish(T + 5, Some(&ok(60, 59, S + 1, S)));
        assert_eq!(b.reserve(T + 6), Decision::Go);
        assert_eq!(b.reserve(T + 6), Decision::Go);
    }

    #[test]
    fn answers_without_rate_limit_headers_turn_pacing_off() {
        let mut b = Budget::default();
        assert_eq!(b.reserve(T), Decision::Go);
        b.finish(T + 5, Some(&Answer::default()));
        for _ in 0..1000 {
            assert_eq!(b.reserve(T + 6), Decision::Go);
        }
    }

    #[test]
    fn a_connection_error_gives_the_probe_slot_back() {
        let mut b = Budget::default();
        assert_eq!(b.reserve(T), Decision::Go);
        b.finish(T + 5, None);
        assert_eq!(b.reserve(T + 6), Decision::Go);
    }

    #[test]
    fn calls_in_flight_count_against_the_window_and_the_margin_is_kept() {
        // 10 per window, 9 left, margin 1: 8 more may go before anything is answered.
        let mut b = learned(10);
        for _ in 0..8 {
            assert_eq!(b.reserve(T + 10), Decision::Go);
        }
        assert_eq!(b.reserve(T + 10), Decision::WaitUntil(T + 5 + 1000));
        assert_eq!(b.in_flight(), 8);
        // An answer that counted it and one more: still 8 - 1 on the wire, 7 left: no slot.
        b.finish(T + 20, Some(&ok(10, 7, S + 1, S)));
        assert_eq!(b.reserve(T + 21), Decision::WaitUntil(T + 1005));
    }

    #[test]
    fn a_spent_window_makes_everyone_wait_until_it_ends_then_starts_fresh() {
        let mut b = learned(10);
        assert_eq!(b.reserve(T + 25), Decision::Go);
        b.finish(T + 30, Some(&ok(10, 1, S + 1, S)));
        assert_eq!(b.reserve(T + 31), Decision::WaitUntil(T + 1005));
        assert_eq!(b.reserve(T + 1004), Decision::WaitUntil(T + 1005));
        // The window ended: the whole limit minus the margin, before anything is answered.
        for _ in 0..9 {
            assert_eq!(b.reserve(T + 1005), Decision::Go);
        }
        // When the fresh window ends is not known yet: wait for an answer.
        assert_eq!(b.reserve(T + 1005), Decision::WaitForAnswer);
        b.finish(T + 1010, Some(&ok(10, 9, S + 2, S + 1)));
        assert_eq!(b.reserve(T + 1011), Decision::WaitUntil(T + 2010));
    }

    #[test]
    fn the_window_end_comes_from_reset_minus_date_not_from_our_clock() {
        // Okta's clock is an hour ahead of ours: Reset is read against its Date.
        let mut b = Budget::default();
        let okta = S + 3600;
        assert_eq!(b.reserve(T), Decision::Go);
        b.finish(T + 5, Some(&ok(10, 9, okta + 60, okta)));
        assert_eq!(b.opening(T + 6), Some(T + 5 + 60_000));
        assert_eq!(b.reserve(T + 6), Decision::Go);
        // A later answer of the same window narrows its end (Date has whole seconds).
        b.finish(T + 700, Some(&ok(10, 1, okta + 60, okta + 1)));
        assert_eq!(b.reserve(T + 701), Decision::WaitUntil(T + 700 + 59_000));
        assert_eq!(b.reserve(T + 59_700), Decision::Go);
    }

    #[test]
    fn without_date_the_reset_is_read_on_our_clock() {
        let mut b = Budget::default();
        assert_eq!(b.reserve(T), Decision::Go);
        let mut a = ok(2, 0, S + 2, S);
        a.date = None;
        b.finish(T + 5, Some(&a));
        assert_eq!(b.reserve(T + 6), Decision::WaitUntil(T + 2000));
    }

    #[test]
    fn a_429_pauses_every_caller_until_its_reset() {
        let mut b = learned(100);
        assert_eq!(b.reserve(T + 10), Decision::Go);
        assert_eq!(b.reserve(T + 10), Decision::Go);
        let mut a = ok(100, 0, S + 30, S);
        a.rate_limited = true;
        b.finish(T + 20, Some(&a));
        // The other caller, and anyone new, waits for the reset, though 98 were "left".
        assert_eq!(b.reserve(T + 21), Decision::WaitUntil(T + 20 + 30_000));
        assert_eq!(b.opening(T + 21), Some(T + 30_020));
        assert_eq!(b.reserve(T + 30_020), Decision::Go);
    }

    #[test]
    fn a_429_pauses_at_least_a_second_and_even_for_an_earlier_window() {
        let mut b = learned(100);
        b.finish(T + 10, Some(&ok(100, 50, S + 60, S)));
        assert_eq!(b.reserve(T + 11), Decision::Go);
        // Another counter's window, ending before the one we know, or already over by Date.
        let mut a = ok(100, 0, S, S);
        a.rate_limited = true;
        b.finish(T + 20, Some(&a));
        assert_eq!(b.reserve(T + 21), Decision::WaitUntil(T + 1020));
        // Without Reset: a second.
        assert_eq!(b.reserve(T + 1020), Decision::Go);
        b.finish(
            T + 1030,
            Some(&Answer {
                rate_limited: true,
                ..Answer::default()
            }),
        );
        assert_eq!(b.reserve(T + 1031), Decision::WaitUntil(T + 2030));
    }

    #[test]
    fn a_tighter_counter_or_a_changed_limit_takes_over() {
        // Learned a roomy window (600 a minute), then answers about a window of 60 ending sooner.
        let mut b = Budget::default();
        assert_eq!(b.reserve(T), Decision::Go);
        b.finish(T + 5, Some(&ok(600, 599, S + 60, S)));
        for _ in 0..5 {
            assert_eq!(b.reserve(T + 10), Decision::Go);
        }
        b.finish(T + 20, Some(&ok(60, 5, S + 1, S)));
        // 5 left, 4 on the wire, a margin of 3 (of 60, not of 600): wait for that window.
        assert_eq!(b.reserve(T + 21), Decision::WaitUntil(T + 1020));
    }

    #[test]
    fn okta_s_next_window_waits_until_ours_has_ended() {
        let mut b = learned(10);
        assert_eq!(b.reserve(T + 10), Decision::Go);
        assert_eq!(b.reserve(T + 10), Decision::Go);
        b.finish(T + 20, Some(&ok(10, 1, S + 1, S)));
        // A call counted in Okta's next window, answered before ours ends by our estimate.
        b.finish(T + 30, Some(&ok(10, 9, S + 2, S + 1)));
        assert_eq!(b.reserve(T + 31), Decision::WaitUntil(T + 1005));
        assert_eq!(b.reserve(T + 1005), Decision::Go);
    }

    #[test]
    fn late_answers_about_an_ended_window_are_ignored() {
        let mut b = learned(10);
        assert_eq!(b.reserve(T + 10), Decision::Go);
        assert_eq!(b.reserve(T + 1005), Decision::Go);
        // The first call's answer arrives after the window ended here, saying 0 were left then.
        b.finish(T + 1010, Some(&ok(10, 0, S + 1, S)));
        assert_eq!(b.reserve(T + 1011), Decision::Go);
    }

    #[test]
    fn the_lowest_remaining_of_a_window_wins() {
        let mut b = learned(10);
        assert_eq!(b.reserve(T + 10), Decision::Go);
        assert_eq!(b.reserve(T + 10), Decision::Go);
        b.finish(T + 20, Some(&ok(10, 2, S + 1, S)));
        // An answer counted earlier (more left) does not give budget back.
        b.finish(T + 21, Some(&ok(10, 8, S + 1, S)));
        assert_eq!(b.reserve(T + 22), Decision::Go);
        assert_eq!(b.reserve(T + 22), Decision::WaitUntil(T + 1005));
    }

    #[test]
    fn answer_headers_are_read_and_garbage_ignored() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("x-rate-limit-limit", "600".parse().expect("hv"));
        h.insert("x-rate-limit-remaining", " 12 ".parse().expect("hv"));
        h.insert("x-rate-limit-reset", "1700000060".parse().expect("hv"));
        h.insert("date", "Tue, 14 Nov 2023 22:13:20 GMT".parse().expect("hv"));
        assert_eq!(
            Answer::from_headers(200, &h),
            Answer {
                rate_limited: false,
                limit: Some(600),
                remaining: Some(12),
                reset: Some(1_700_000_060),
                date: Some(1_700_000_000),
            }
        );
        h.insert("x-rate-limit-remaining", "-1".parse().expect("hv"));
        h.insert("x-rate-limit-reset", "soon".parse().expect("hv"));
        h.insert("date", "yesterday".parse().expect("hv"));
        let a = Answer::from_headers(429, &h);
        assert!(a.rate_limited);
        assert_eq!((a.remaining, a.reset, a.date), (None, None, None));
    }

    #[tokio::test]
    async fn a_429_seen_by_one_caller_stops_the_others_within_their_bound() {
        let pacer = Pacer::default();
        let mut waited = Duration::ZERO;
        let first = pacer
            .acquire(&mut waited, Duration::from_secs(30))
            .await
            .expect("a first slot");
        let now = chrono::Utc::now().timestamp();
        first.answered(&Answer {
            rate_limited: true,
            limit: Some(600),
            remaining: Some(0),
            reset: Some(now + 120),
            date: Some(now),
        });
        assert_eq!(pacer.in_flight(), 0);
        // Another caller, willing to wait 30 s, is told at once to come back in ~120 s.
        let mut waited = Duration::ZERO;
        let retry_after = pacer
            .acquire(&mut waited, Duration::from_secs(30))
            .await
            .expect_err("paused");
        assert!((119..=120).contains(&retry_after), "{retry_after}");
        assert!(waited < Duration::from_secs(1), "{waited:?}");
    }

    #[tokio::test]
    async fn a_dropped_slot_is_given_back() {
        let pacer = Pacer::default();
        let mut waited = Duration::ZERO;
        let slot = pacer
            .acquire(&mut waited, Duration::from_secs(30))
            .await
            .expect("slot");
        assert_eq!(pacer.in_flight(), 1);
        drop(slot);
        assert_eq!(pacer.in_flight(), 0);
    }
}
