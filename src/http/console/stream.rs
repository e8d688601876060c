//! `GET /__qstash/console/stream?qstash_token=…`: the console's live updates as server-sent
//! events. Every 250 ms the stream reads the user's [`Overview`] (atomic counters plus one
//! short lock acquisition) and sends it, as an `overview` event, only if it changed; the page
//! then fetches whatever it shows through the API. Nothing is done per message, so an open
//! console costs the engine four brief lock acquisitions a second.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use tokio::time::{Interval, MissedTickBehavior};

use crate::engine::{Broker, Overview};
use crate::http::AppState;
use crate::http::auth::User;
use crate::http::controls::overview_json;
use crate::users::UserId;

const PERIOD: Duration = Duration::from_millis(250);

/// What makes a new event worth sending: the overview and the clock's settings (its reading
/// when frozen, its offset from the system time to the second when running), but not the
/// passing of time itself.
#[derive(PartialEq)]
struct Seen {
    overview: Overview,
    clock: (bool, i64),
}

struct Watch {
    broker: Broker,
    user: UserId,
    ticks: Interval,
    last: Option<Seen>,
}

fn clock_key(broker: &Broker) -> (bool, i64) {
    let clock = broker.clock();
    let now = clock.now_ms();
    if clock.is_paused() {
        return (true, now);
    }
    let system = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    (false, ((now - system) as f64 / 1000.0).round() as i64)
}

/// Waits for the next change; `None` when the server is stopping.
async fn next(mut s: Watch) -> Option<(Result<Event, Infallible>, Watch)> {
    loop {
        let broker = s.broker.clone();
        tokio::select! {
            _ = broker.closing() => return None,
            _ = s.ticks.tick() => {}
        }
        let seen = Seen {
            overview: s.broker.overview(s.user),
            clock: clock_key(&s.broker),
        };
        if s.last.as_ref() == Some(&seen) {
            continue;
        }
        let json = overview_json(s.user, &seen.overview, s.broker.clock());
        let event = Event::default()
            .event("overview")
            .retry(Duration::from_secs(2))
            .data(json.to_string());
        s.last = Some(seen);
        return Some((Ok(event), s));
    }
}

pub async fn stream(
    State(app): State<AppState>,
    User(user): User,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut ticks = tokio::time::interval(PERIOD);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let state = Watch {
        broker: app.broker,
        user,
        ticks,
        last: None,
    };
    Sse::new(futures_util::stream::unfold(state, next)).keep_alive(KeepAlive::default())
}
