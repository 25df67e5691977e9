//! Forwards social posts that are still fresh and drops the rest.
//!
//! Input: `dev.sluice.social.post` events whose `time` (or JSON
//! `created_at`) is an RFC 3339 timestamp. A post older than the window
//! (env `FRESH_WITHIN_SECS`, default 300) is consumed; a fresh one is
//! forwarded as `dev.sluice.social.post.fresh`. A post without a readable
//! time is treated as stale.

use sluice_guest::{handler, log, Error, Event};

fn handle(event: Event) -> Result<Option<Event>, Error> {
    let window: i64 = std::env::var("FRESH_WITHIN_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let created = match event.time() {
        Some(t) => t.to_owned(),
        None => event
            .json::<serde_json::Value>()?
            .get("created_at")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned(),
    };
    let Some(created) = parse_rfc3339(&created) else {
        log::info(&format!("post {} has no readable time; dropped", event.id()));
        return Ok(None);
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| Error::new("clock before 1970"))?
        .as_secs() as i64;
    let age = now - created;
    if age > window {
        log::info(&format!("post {} is {age}s old (window {window}s); dropped", event.id()));
        return Ok(None);
    }
    Ok(Some(event.to_builder().ty("dev.sluice.social.post.fresh").build()?))
}

/// Seconds since the Unix epoch of an RFC 3339 timestamp (`Z` or offset;
/// fractional seconds ignored). Small on purpose: no date crate needed.
fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        rest = frac.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    let offset = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            sign * (o[1..3].parse::<i64>().ok()? * 3600 + o[4..6].parse::<i64>().ok()? * 60)
        }
        _ => return None,
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if mo > 2 { mo - 3 } else { mo + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(days * 86400 + h * 3600 + mi * 60 + se - offset)
}

handler!(handle);
