//! Delivery slots: how many attempts may be in flight at once, in total (sized from the
//! process's file-descriptor limit), per `host:port` and per route (host and path).
//!
//! The rule, so a slow or hanging route cannot starve anything else:
//! * a route may always have [`SlotLimits::guaranteed`] attempts in flight (within the hard
//!   total), so a fast route keeps flowing next to routes that hang;
//! * beyond that it needs room under the soft total, under its host's limit and under the
//!   route limit (half the host's), so one hanging route takes at most half of its host.
//!
//! Messages that must wait queue per route (FIFO); routes take turns when slots free up.

use std::collections::VecDeque;

use crate::ids::{FnvMap, MessageId};
use crate::users::UserId;

/// Attempts in flight at most, at each level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotLimits {
    /// Never exceeded: every attempt holds a socket.
    pub total_hard: usize,
    /// Above this only routes below their guaranteed share start attempts.
    pub total_soft: usize,
    pub per_host: usize,
    pub per_route: usize,
    pub guaranteed: usize,
}

impl SlotLimits {
    /// Limits for `outbound` sockets: a quarter of them is kept for guaranteed shares.
    pub fn for_outbound(outbound: usize, per_host: usize) -> Self {
        let total_hard = outbound.max(8);
        Self {
            total_hard,
            total_soft: total_hard - total_hard / 4,
            per_host: per_host.max(2),
            per_route: (per_host / 2).max(1),
            guaranteed: 4,
        }
    }
}

/// Routes looked at per release: a bound on the work one finished attempt can cause.
const TURNS_PER_RELEASE: usize = 64;

#[derive(Default)]
struct Route {
    in_flight: usize,
    waiting: VecDeque<(UserId, MessageId)>,
    /// Present in `Slots::turns`.
    has_turn: bool,
}

#[derive(Default)]
struct Host {
    in_flight: usize,
    routes: FnvMap<Box<str>, Route>,
}

#[derive(Default)]
pub struct Slots {
    limits: Option<SlotLimits>,
    total: usize,
    hosts: FnvMap<Box<str>, Host>,
    /// Routes with waiting messages, in the order they get their turn.
    turns: VecDeque<(Box<str>, Box<str>)>,
}

impl Slots {
    pub fn new(limits: SlotLimits) -> Self {
        Self {
            limits: Some(limits),
            ..Default::default()
        }
    }

    fn limits(&self) -> SlotLimits {
        self.limits
            .unwrap_or_else(|| SlotLimits::for_outbound(1024, 128))
    }

    #[cfg(test)]
    fn in_flight(&self) -> usize {
        self.total
    }

    fn may_start(&self, host: Option<&Host>, route: Option<&Route>) -> bool {
        let l = self.limits();
        if self.total >= l.total_hard {
            return false;
        }
        let route_n = route.map_or(0, |r| r.in_flight);
        if route_n < l.guaranteed {
            return true;
        }
        let host_n = host.map_or(0, |h| h.in_flight);
        self.total < l.total_soft && host_n < l.per_host && route_n < l.per_route
    }

    /// Takes a slot for an attempt to `host`/`path` if the rule allows and nobody on that
    /// route waits; otherwise queues the message on its route and returns false.
    pub fn acquire_or_wait(&mut self, host: &str, path: &str, who: (UserId, MessageId)) -> bool {
        let h = self.hosts.get(host);
        let r = h.and_then(|h| h.routes.get(path));
        let behind = r.is_some_and(|r| !r.waiting.is_empty());
        if !behind && self.may_start(h, r) {
            self.take(host, path);
            return true;
        }
        let route = self.route_mut(host, path);
        route.waiting.push_back(who);
        if !route.has_turn {
            route.has_turn = true;
            self.turns.push_back((host.into(), path.into()));
        }
        false
    }

    fn route_mut(&mut self, host: &str, path: &str) -> &mut Route {
        // Looked up before inserting, so the common case allocates no key.
        if !self.hosts.contains_key(host) {
            self.hosts.insert(host.into(), Host::default());
        }
        let h = self.hosts.get_mut(host).expect("inserted above"); // ok: just ensured
        if !h.routes.contains_key(path) {
            h.routes.insert(path.into(), Route::default());
        }
        h.routes.get_mut(path).expect("inserted above") // ok: just ensured
    }

    fn take(&mut self, host: &str, path: &str) {
        self.total += 1;
        self.route_mut(host, path).in_flight += 1;
        if let Some(h) = self.hosts.get_mut(host) {
            h.in_flight += 1;
        }
    }

    /// An attempt to `host`/`path` ended.
    pub fn release(&mut self, host: &str, path: &str) {
        self.total = self.total.saturating_sub(1);
        let Some(h) = self.hosts.get_mut(host) else {
            return;
        };
        h.in_flight = h.in_flight.saturating_sub(1);
        if let Some(r) = h.routes.get_mut(path) {
            r.in_flight = r.in_flight.saturating_sub(1);
            if r.in_flight == 0 && r.waiting.is_empty() {
                h.routes.remove(path);
            }
        }
        if h.in_flight == 0 && h.routes.is_empty() {
            self.hosts.remove(host);
        }
    }

    /// The next waiting messages allowed to start now, their slots taken, routes taking
    /// turns; `still_waiting` tells whether a queued message still wants its slot (cancelled
    /// ones are dropped here, lazily).
    pub fn next_starts(
        &mut self,
        mut still_waiting: impl FnMut(UserId, MessageId) -> bool,
        out: &mut Vec<(UserId, MessageId)>,
    ) {
        let mut looked = 0;
        let mut idle_turns = 0;
        while looked < TURNS_PER_RELEASE && idle_turns < self.turns.len() {
            if self.total >= self.limits().total_hard {
                return;
            }
            let Some((host, path)) = self.turns.pop_front() else {
                return;
            };
            looked += 1;
            let h = self.hosts.get(&*host);
            let r = h.and_then(|h| h.routes.get(&*path));
            let mut started = false;
            if self.may_start(h, r) {
                let route = self.route_mut(&host, &path);
                while let Some(who) = route.waiting.pop_front() {
                    if still_waiting(who.0, who.1) {
                        out.push(who);
                        started = true;
                        break;
                    }
                }
                if started {
                    self.take(&host, &path);
                }
            }
            let route = self.route_mut(&host, &path);
            if route.waiting.is_empty() {
                route.has_turn = false;
                if route.in_flight == 0 {
                    self.release_empty(&host, &path);
                }
            } else {
                self.turns.push_back((host, path));
            }
            idle_turns = if started { 0 } else { idle_turns + 1 };
        }
    }

    /// Forgets a route (and its host) that holds nothing.
    fn release_empty(&mut self, host: &str, path: &str) {
        if let Some(h) = self.hosts.get_mut(host) {
            h.routes.remove(path);
            if h.in_flight == 0 && h.routes.is_empty() {
                self.hosts.remove(host);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(n: u128) -> (UserId, MessageId) {
        (UserId(0), MessageId::from_u128(n))
    }

    fn slots() -> Slots {
        Slots::new(SlotLimits {
            total_hard: 40,
            total_soft: 30,
            per_host: 16,
            per_route: 8,
            guaranteed: 2,
        })
    }

    #[test]
    fn a_hanging_route_takes_half_its_host_and_others_keep_flowing() {
        let mut s = slots();
        let started = (0..20)
            .filter(|i| s.acquire_or_wait("h:1", "/hang", who(*i)))
            .count();
        assert_eq!(started, 8, "the route limit");
        assert!(s.acquire_or_wait("h:1", "/fast", who(100)));
        let more = (0..20)
            .filter(|i| s.acquire_or_wait("h:1", "/other", who(200 + i)))
            .count();
        assert_eq!(more, 7, "the host's remaining room");
        assert!(
            s.acquire_or_wait("h:1", "/fast", who(101)),
            "guaranteed share"
        );
        assert!(
            !s.acquire_or_wait("h:1", "/fast", who(102)),
            "beyond it the host is full"
        );
    }

    #[test]
    fn guaranteed_shares_stop_at_the_hard_total() {
        let mut s = slots();
        for host in 0..30 {
            for i in 0..2 {
                s.acquire_or_wait(&format!("h:{host}"), "/", who(host * 10 + i));
            }
        }
        assert_eq!(s.in_flight(), 40);
        assert!(!s.acquire_or_wait("new:1", "/", who(999)));
    }

    #[test]
    fn released_slots_go_to_waiting_routes_in_turn_and_skip_cancelled() {
        let mut s = slots();
        for i in 0..8 {
            assert!(s.acquire_or_wait("h:1", "/a", who(i)));
        }
        assert!(!s.acquire_or_wait("h:1", "/a", who(8)));
        assert!(!s.acquire_or_wait("h:1", "/a", who(9)));
        s.release("h:1", "/a");
        let mut out = Vec::new();
        s.next_starts(|_, id| id != MessageId::from_u128(8), &mut out);
        assert_eq!(out, [who(9)], "the cancelled head is skipped");
        assert_eq!(s.in_flight(), 8);
        for _ in 0..8 {
            s.release("h:1", "/a");
        }
        s.next_starts(|_, _| true, &mut out);
        assert_eq!(s.in_flight(), 0);
        assert!(
            s.hosts.is_empty() && s.turns.is_empty(),
            "nothing kept for idle routes"
        );
    }
}
