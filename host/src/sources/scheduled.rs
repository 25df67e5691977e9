//! Scheduled sources: ping sources and source functions. Each waits for
//! the ticks of its cron schedule and, at each one, emits a fixed event
//! (ping) or what its source function returns.
//!
//! Ticks missed while the host was down (or while a previous run of the
//! same source was still going) are not replayed: after each tick the next
//! one is computed from the current time. With `catch_up = true` the newest
//! tick missed while the host was down fires once at start-up. A failing
//! run is logged and counted, and the source simply runs again at its next
//! tick. On shutdown a source stops waiting for its next tick; a tick in
//! progress finishes first.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::context::SourceContext;
use super::function::StatefulFunction;
use super::state::StateFile;
use super::{ping, source_uri, PrepareError, Source};
use crate::config::schedule::{self, Schedule};
use crate::config::DeliverySpec;
use crate::config::{apply_extensions, Destination, Extensions, Payload, SourceSpec};
use crate::event::{Event, SPEC_VERSION};
use crate::metrics::{SourceMetrics, TickOutcome};
use crate::name::Name;
use crate::runtime::Runtime;

/// What a source does at each tick.
enum Job {
    Ping(Payload),
    Function(Box<StatefulFunction>),
}

/// A ping source or a source function, ready to start.
pub struct ScheduledSource {
    name: Name,
    uri: String,
    schedule: Schedule,
    target: Destination,
    delivery: Option<DeliverySpec>,
    extensions: Extensions,
    job: Job,
    /// Where the last tick's time is kept, when missed ticks are caught up.
    last_tick_file: Option<StateFile>,
}

impl ScheduledSource {
    /// Check `spec` and load its function, if any; its files go in `dir`,
    /// artifacts in `artifacts`.
    ///
    /// # Errors
    /// Why the source cannot be used.
    pub async fn prepare(
        name: &Name,
        spec: &SourceSpec,
        runtime: &Arc<Runtime>,
        metrics: &SourceMetrics,
        dir: &Path,
        artifacts: &Path,
    ) -> Result<Self, PrepareError> {
        spec.validate()?;
        std::fs::create_dir_all(dir).map_err(|source| PrepareError::Io {
            action: "creating",
            path: dir.to_owned(),
            source,
        })?;
        let job = match spec {
            SourceSpec::Ping(p) => Job::Ping(p.payload()?),
            SourceSpec::Function(f) => Job::Function(Box::new(
                StatefulFunction::load(runtime, name, f, metrics, dir, artifacts).await?,
            )),
        };
        Ok(Self {
            name: name.clone(),
            uri: source_uri(name.as_str()),
            schedule: spec.schedule().map_err(crate::config::SpecError::from)?,
            target: spec.target().clone(),
            delivery: spec.delivery().cloned(),
            extensions: spec.extensions().clone(),
            job,
            last_tick_file: spec
                .catch_up()
                .then(|| StateFile::new(dir.join(format!("{name}.last-tick")))),
        })
    }

    /// The cached artifact of its source function, if it has one.
    pub fn artifact(&self) -> Option<&Path> {
        match &self.job {
            Job::Ping(_) => None,
            Job::Function(f) => Some(f.artifact()),
        }
    }

    /// With `catch_up`, the latest tick after the recorded last one that is
    /// already past.
    async fn missed_tick(&self) -> Option<DateTime<Tz>> {
        let file = self.last_tick_file.as_ref()?;
        let bytes = file.read().await.ok()??;
        let text = String::from_utf8(bytes).ok()?;
        let last = DateTime::parse_from_rfc3339(text.trim())
            .ok()?
            .with_timezone(&Utc);
        let now = Utc::now();
        let mut missed = None;
        let mut at = last;
        // Walk forward to the newest past tick; bounded so a years-long
        // outage on a per-second schedule cannot stall start-up.
        for _ in 0..100_000 {
            match self.schedule.next_after(at) {
                Some(t) if t.with_timezone(&Utc) <= now => {
                    at = t.with_timezone(&Utc);
                    missed = Some(t);
                }
                _ => break,
            }
        }
        missed
    }

    /// With `catch_up`, remember the tick that just ran.
    async fn record_tick(&self, tick: &DateTime<Tz>) {
        if let Some(file) = &self.last_tick_file {
            if let Err(e) = file.write(schedule::rfc3339(tick).into_bytes()).await {
                tracing::warn!(source = %self.name, "recording the last tick failed: {e}");
            }
        }
    }

    /// Run one tick and count how it ended.
    async fn tick(&mut self, tick: &DateTime<Tz>, cx: &SourceContext) {
        let outcome = self.run_tick(tick, cx).await;
        cx.metrics().sources.tick(self.name.as_str(), outcome);
        self.record_tick(tick).await;
    }

    async fn run_tick(&mut self, tick: &DateTime<Tz>, cx: &SourceContext) -> TickOutcome {
        let name = self.name.as_str();
        let (events, state) = match &mut self.job {
            Job::Ping(payload) => (vec![ping::event(&self.uri, tick, payload)], None),
            Job::Function(function) => {
                let time = schedule::rfc3339(tick);
                match function.run(&time).await {
                    Ok(run) => (run.events, run.state),
                    Err(e) => {
                        tracing::error!(source = %name, tick = %time, kind = e.kind().as_str(), "source run failed; retrying at the next tick: {e}");
                        return TickOutcome::RunFailed;
                    }
                }
            }
        };
        let mut outcome = TickOutcome::Emitted;
        let mut refused = false;
        for event in events {
            let event = match complete(event, &self.uri, &self.extensions) {
                Ok(e) => e,
                Err(e) => {
                    tracing::error!(source = %name, "source produced an invalid event, dropped: {e}");
                    outcome = TickOutcome::SinkFailed;
                    continue;
                }
            };
            let id = event.id.clone();
            match self.emit(cx, event).await {
                Ok(()) => {
                    cx.metrics().sources.emitted(name);
                    tracing::debug!(source = %name, event_id = %id, sink = %self.target, "source event emitted");
                }
                Err(e) => {
                    tracing::debug!(source = %name, event_id = %id, sink = %self.target, "emitting a source event failed: {e}");
                    outcome = TickOutcome::SinkFailed;
                    // A dead-lettered event was kept, by the dead letter.
                    refused |= !matches!(&e, super::EmitError::Undeliverable(u) if u.dead_lettered);
                }
            }
        }
        // The run's state is kept only once every valid event was taken (by
        // its sink or its dead letter): after a refusal the next run starts
        // from the old state and produces the refused events again. (An
        // invalid event is the guest's fault; running again would only
        // repeat it.)
        if let (Some(state), Job::Function(function)) = (state, &mut self.job) {
            if !refused {
                function.commit(state).await;
            } else {
                tracing::warn!(source = %name, "an event of this run was not taken: its state is not kept, the next run starts from the previous one");
            }
        }
        outcome
    }

    /// Hand one event to the binding's target: the broker's routing, or the
    /// delivery engine with the binding's delivery options (retries,
    /// backoff, dead letter), as a trigger's subscriber would get it.
    async fn emit(&self, cx: &SourceContext, event: Event) -> Result<(), super::EmitError> {
        let to = &self.target;
        if to == &Destination::Broker {
            return cx.publish(vec![event]).await;
        }
        let reply = cx
            .deliver(self.name.as_str(), to, event, self.delivery.as_ref())
            .await?;
        if let Some(reply) = reply {
            tracing::debug!(source = %self.name, destination = %to, reply_id = %reply.id, "reply to a source event dropped (bind the source to the broker to route replies)");
        }
        Ok(())
    }
}

impl Source for ScheduledSource {
    fn name(&self) -> &Name {
        &self.name
    }

    async fn run(mut self, cx: SourceContext) {
        tracing::info!(source = %self.name, sink = %self.target, "source started");
        let mut last: Option<DateTime<Utc>> = None;
        if let Some(missed) = self.missed_tick().await {
            tracing::info!(source = %self.name, tick = %schedule::rfc3339(&missed), "catching up the last tick missed while the host was down");
            self.tick(&missed, &cx).await;
            last = Some(missed.with_timezone(&Utc));
        }
        loop {
            // Never before the last tick, so a wake-up a hair early by the
            // wall clock cannot fire the same tick twice.
            let now = Utc::now();
            let from = last.map_or(now, |l| l.max(now));
            let Some(tick) = self.schedule.next_after(from) else {
                tracing::info!(source = %self.name, "schedule has no further ticks; source stopped");
                return;
            };
            let tick_utc = tick.with_timezone(&Utc);
            last = Some(tick_utc);
            let wait = (tick_utc - Utc::now()).to_std().unwrap_or_default();
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = cx.shutdown().cancelled() => {
                    tracing::debug!(source = %self.name, "source stopped");
                    return;
                }
            }
            self.tick(&tick, &cx).await;
        }
    }
}

/// Fill in what a source function may leave empty, apply the binding's
/// extensions, and validate.
fn complete(
    mut e: Event,
    uri: &str,
    extensions: &Extensions,
) -> Result<Event, crate::event::InvalidEvent> {
    if e.id.is_empty() {
        e.id = uuid::Uuid::new_v4().to_string();
    }
    if e.source.is_empty() {
        e.source = uri.to_owned();
    }
    if e.specversion.is_empty() {
        e.specversion = SPEC_VERSION.to_owned();
    }
    apply_extensions(&mut e, extensions);
    e.validate()?;
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::ExtensionValue;
    use std::collections::BTreeMap;

    #[test]
    fn complete_fills_blanks_and_overrides_win() {
        let mut e = Event::new("", "", "t");
        e.specversion.clear();
        e.extensions
            .insert("team".into(), ExtensionValue::String("guest".into()));
        let extensions = BTreeMap::from([("team".to_owned(), "ops".to_owned())]);
        let e = complete(e, "/sluice/sources/x", &extensions).unwrap();
        assert_eq!(e.source, "/sluice/sources/x");
        assert_eq!(e.specversion, "1.0");
        assert!(!e.id.is_empty());
        assert_eq!(e.extensions["team"], ExtensionValue::String("ops".into()));
        assert!(complete(Event::new("1", "/s", ""), "/u", &extensions).is_err());
    }
}
