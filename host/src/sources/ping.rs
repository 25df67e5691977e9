//! Ping sources: a fixed event on every tick.

use chrono::DateTime;
use chrono_tz::Tz;

use crate::config::schedule::rfc3339;
use crate::config::Payload;
use crate::event::Event;

/// `type` of every ping event.
pub const PING_TYPE: &str = "dev.sluice.sources.ping";

/// The event of one tick: a fresh UUID `id`, the source's URI as `source`,
/// the tick as `time`, and the configured payload.
pub fn event(source_uri: &str, tick: &DateTime<Tz>, payload: &Payload) -> Event {
    let mut e = Event::new(uuid::Uuid::new_v4().to_string(), source_uri, PING_TYPE);
    e.time = Some(rfc3339(tick));
    e.datacontenttype = payload.content_type.clone();
    e.data = payload.data.clone();
    e
}
