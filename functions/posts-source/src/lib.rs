//! Polls a posts API for new items and emits one `dev.sluice.social.post`
//! event per post, never the same post twice: the API's cursor is kept in
//! the source's state and sent back on the next poll.
//!
//! Config: `url` (required) answers `GET url?after=CURSOR` with
//! `{"posts": [{"id": "p1", "author": "...", "text": "...", "created_at":
//! "RFC 3339"}], "cursor": "..."}`.

use serde::Deserialize;
use sluice_guest::source::{http, Context, Output};
use sluice_guest::{source, Error, Event};

#[derive(Deserialize)]
struct Page {
    posts: Vec<serde_json::Value>,
    cursor: Option<String>,
}

fn run(cx: Context) -> Result<Output, Error> {
    let url = cx.config("url").ok_or("config `url` is required")?;
    let cursor = cx
        .state()
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .unwrap_or_default();
    let sep = if url.contains('?') { '&' } else { '?' };
    let body = http::get(&format!("{url}{sep}after={cursor}"))?;
    let page: Page = serde_json::from_slice(&body)?;
    let mut events = Vec::new();
    for post in &page.posts {
        let id = post["id"].as_str().ok_or("a post has no string `id`")?;
        let mut b = Event::builder()
            // The post's id makes the event id stable: a consumer can
            // de-duplicate even across a host restart.
            .id(format!("post-{id}"))
            .ty("dev.sluice.social.post")
            .subject(id)
            .json(post)?;
        if let Some(t) = post["created_at"].as_str() {
            b = b.time(t);
        }
        events.push(b.finish()?);
    }
    let mut out = Output::events(events);
    if let Some(c) = page.cursor {
        out = out.with_state(c);
    }
    Ok(out)
}

source!(run);
