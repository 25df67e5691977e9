//! Cron schedules in a time zone.
//!
//! Parsing and "next occurrence" come from `croner` (maintained, supports an
//! optional seconds field, `L`/`#` modifiers, and DST-correct iteration over
//! any `chrono` time zone); zones come from `chrono-tz` (the IANA database
//! compiled in, so results do not depend on the machine's tzdata).

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use croner::Cron;

/// A schedule that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The expression does not parse.
    #[error("schedule `{expr}` is not a valid cron expression: {reason}")]
    Cron {
        /// The expression.
        expr: String,
        /// The parser's reason.
        reason: String,
    },
    /// The zone is unknown.
    #[error("timezone `{0}` is not an IANA time zone name")]
    Timezone(String),
}

/// A parsed cron expression and the zone it is read in.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    tz: Tz,
}

impl Schedule {
    /// Parse `expr` (5 fields, or 6 with leading seconds) in `tz` (IANA
    /// name; default UTC).
    ///
    /// # Errors
    /// [`ScheduleError`] naming the bad expression or zone.
    pub fn new(expr: &str, tz: Option<&str>) -> Result<Self, ScheduleError> {
        let cron =
            croner::parser::CronParser::new()
                .parse(expr)
                .map_err(|e| ScheduleError::Cron {
                    expr: expr.to_owned(),
                    reason: e.to_string(),
                })?;
        let tz = match tz {
            None => Tz::UTC,
            Some(name) => name
                .parse::<Tz>()
                .map_err(|_| ScheduleError::Timezone(name.to_owned()))?,
        };
        Ok(Self { cron, tz })
    }

    /// The first tick strictly after `after`, or `None` when the expression
    /// never fires again.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Tz>> {
        self.cron
            .find_next_occurrence(&after.with_timezone(&self.tz), false)
            .ok()
    }
}

/// `time` attribute of a tick: RFC 3339 with the zone's offset.
pub fn rfc3339(tick: &DateTime<Tz>) -> String {
    tick.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_and_zones() {
        let s = Schedule::new("*/15 * * * * *", None).unwrap();
        let t = "2026-01-01T00:00:07Z".parse::<DateTime<Utc>>().unwrap();
        assert_eq!(
            rfc3339(&s.next_after(t).unwrap()),
            "2026-01-01T00:00:15.000Z"
        );

        // 09:00 in Berlin is 08:00 UTC in winter.
        let s = Schedule::new("0 9 * * *", Some("Europe/Berlin")).unwrap();
        let next = s.next_after(t).unwrap();
        assert_eq!(rfc3339(&next), "2026-01-01T09:00:00.000+01:00");
        assert_eq!(
            next.with_timezone(&Utc).to_rfc3339(),
            "2026-01-01T08:00:00+00:00"
        );
    }

    #[test]
    fn bad_input() {
        assert!(Schedule::new("61 * * * *", None).is_err());
        assert!(Schedule::new("* * * * *", Some("Nowhere/Town")).is_err());
    }
}
