//! Event sources: producers declared in `sluice.toml` that emit events on
//! a cron schedule into a binding's sink, without knowing where that is
//! (Knative's SinkBinding idea). See `docs/sources.md`.
//!
//! - [`spec`]: the `[sources.NAME]` schema and the sink binding ([`Target`]).
//! - [`schedule`]: cron expressions with seconds and time zones.
//! - [`ping`]: the fixed event of a ping source.
//! - [`function`]: source functions (`sluice:handler/source` components).
//! - [`outbound`]: their `wasi:http` allow-list.
//!
//! Each source runs in its own task. Ticks missed while the host was down
//! (or while a previous run of the same source was still going) are not
//! replayed: after each tick the next one is computed from the current
//! time. With `catch_up = true` the newest tick missed while the host was
//! down fires once at start-up. A failing run is logged and counted, and the source simply runs
//! again at its next tick.

pub mod function;
pub mod outbound;
pub mod ping;
pub mod schedule;
pub mod spec;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Weak;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

pub use self::spec::{FunctionSourceSpec, PingSpec, SourceSpec, Target};

use self::function::SourceFunction;
use self::schedule::Schedule;
use self::spec::Payload;
use crate::app::App;
use crate::config::DeliverySpec;
use crate::event::{Event, ExtensionValue, SPEC_VERSION};
use crate::metrics::{SourceMetrics, TickOutcome};
use crate::registry::Name;

/// The `source` attribute of events from the source `name`.
pub fn source_uri(name: &str) -> String {
    format!("/sluice/sources/{name}")
}

/// What a source does at each tick.
enum Job {
    Ping(Payload),
    Function {
        function: SourceFunction,
        state: Option<Vec<u8>>,
        state_file: PathBuf,
    },
}

/// A source ready to start.
struct Prepared {
    name: Name,
    schedule: Schedule,
    target: Target,
    delivery: Option<DeliverySpec>,
    overrides: BTreeMap<String, String>,
    job: Job,
    /// Where the last tick's time is kept, when missed ticks are caught up.
    last_tick_file: Option<PathBuf>,
}

/// Every source, loaded but not started yet.
pub struct PreparedSources {
    sources: Vec<Prepared>,
    metrics: SourceMetrics,
}

/// The running sources; dropping it stops them.
pub struct Sources {
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// A source that cannot be started.
#[derive(Debug, thiserror::Error)]
#[error("source `{name}`: {reason}")]
pub struct SourceError {
    name: Name,
    reason: String,
}

impl PreparedSources {
    /// Check every spec and load every source function. State left by
    /// earlier runs of a source function is read from
    /// `DATA_DIR/sources/NAME.state`.
    ///
    /// # Errors
    /// The first source that cannot be used.
    pub async fn prepare(
        specs: &BTreeMap<Name, SourceSpec>,
        runtime: &crate::runtime::Runtime,
        metrics: SourceMetrics,
        data_dir: &Path,
    ) -> Result<Self, SourceError> {
        let mut sources = Vec::new();
        for (name, spec) in specs {
            let fail = |reason: String| SourceError {
                name: name.clone(),
                reason,
            };
            spec.validate().map_err(fail)?;
            let dir = data_dir.join("sources");
            std::fs::create_dir_all(&dir).map_err(|e| fail(e.to_string()))?;
            let job = match spec {
                SourceSpec::Ping(p) => Job::Ping(p.payload().map_err(fail)?),
                SourceSpec::Function(f) => {
                    let function = SourceFunction::load(runtime, name.as_str(), f, metrics.clone())
                        .await
                        .map_err(fail)?;
                    let state_file = dir.join(format!("{name}.state"));
                    let state = std::fs::read(&state_file).ok();
                    Job::Function {
                        function,
                        state,
                        state_file,
                    }
                }
            };
            sources.push(Prepared {
                name: name.clone(),
                schedule: spec.schedule().map_err(fail)?,
                target: spec.target().clone(),
                delivery: spec.delivery().cloned(),
                overrides: spec.overrides().clone(),
                job,
                last_tick_file: spec
                    .catch_up()
                    .then(|| dir.join(format!("{name}.last-tick"))),
            });
        }
        Ok(Self { sources, metrics })
    }
}

impl Sources {
    /// No sources running (yet).
    pub fn none() -> Self {
        Self {
            tasks: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Start one task per prepared source. The tasks hold `app` weakly:
    /// they stop when the host is dropped. Call it once `app` is fully
    /// built, so the first tick can always reach it.
    pub fn start(&self, prepared: PreparedSources, app: Weak<App>) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        for source in prepared.sources {
            tracing::info!(source = %source.name, sink = %source.target, "source started");
            tasks.push(tokio::spawn(run(
                source,
                app.clone(),
                prepared.metrics.clone(),
            )));
        }
    }

    /// How many sources are running.
    pub fn len(&self) -> usize {
        self.tasks.lock().map_or(0, |t| t.len())
    }

    /// Whether no source is running.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for Sources {
    fn drop(&mut self) {
        if let Ok(tasks) = self.tasks.get_mut() {
            for t in tasks.iter() {
                t.abort();
            }
        }
    }
}

/// The task of one source: wait for each tick, then run it.
async fn run(mut source: Prepared, app: Weak<App>, metrics: SourceMetrics) {
    let uri = source_uri(source.name.as_str());
    let mut last: Option<DateTime<Utc>> = None;
    if let Some(missed) = missed_tick(&source) {
        tracing::info!(source = %source.name, tick = %schedule::rfc3339(&missed), "catching up the last tick missed while the host was down");
        let Some(app) = app.upgrade() else { return };
        let outcome = run_tick(&mut source, &uri, &missed, &app, &metrics).await;
        metrics.tick(source.name.as_str(), outcome);
        record_tick(&source, &missed);
        last = Some(missed.with_timezone(&Utc));
    }
    loop {
        // Never before the last tick, so a wake-up a hair early by the
        // wall clock cannot fire the same tick twice.
        let now = Utc::now();
        let from = last.map_or(now, |l| l.max(now));
        let Some(tick) = source.schedule.next_after(from) else {
            tracing::info!(source = %source.name, "schedule has no further ticks; source stopped");
            return;
        };
        let tick_utc = tick.with_timezone(&Utc);
        last = Some(tick_utc);
        if let Ok(wait) = (tick_utc - Utc::now()).to_std() {
            tokio::time::sleep(wait).await;
        }
        let Some(app) = app.upgrade() else { return };
        let outcome = run_tick(&mut source, &uri, &tick, &app, &metrics).await;
        metrics.tick(source.name.as_str(), outcome);
        record_tick(&source, &tick);
    }
}

/// With `catch_up`, the latest tick after the recorded last one that is
/// already past.
fn missed_tick(source: &Prepared) -> Option<DateTime<Tz>> {
    let file = source.last_tick_file.as_ref()?;
    let text = std::fs::read_to_string(file).ok()?;
    let last = DateTime::parse_from_rfc3339(text.trim())
        .ok()?
        .with_timezone(&Utc);
    let now = Utc::now();
    let mut missed = None;
    let mut at = last;
    // Walk forward to the newest past tick; bounded so a years-long outage
    // on a per-second schedule cannot stall start-up.
    for _ in 0..100_000 {
        match source.schedule.next_after(at) {
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
fn record_tick(source: &Prepared, tick: &DateTime<Tz>) {
    if let Some(file) = &source.last_tick_file {
        if let Err(e) = std::fs::write(file, schedule::rfc3339(tick)) {
            tracing::warn!(source = %source.name, "recording the last tick failed: {e}");
        }
    }
}

async fn run_tick(
    source: &mut Prepared,
    uri: &str,
    tick: &DateTime<Tz>,
    app: &App,
    metrics: &SourceMetrics,
) -> TickOutcome {
    let name = source.name.as_str();
    let events = match &mut source.job {
        Job::Ping(payload) => vec![ping::event(uri, tick, payload)],
        Job::Function {
            function,
            state,
            state_file,
        } => {
            let time = schedule::rfc3339(tick);
            let runtime_metrics = app.runtime.metrics();
            let label = format!("source:{name}");
            // Source functions stay loaded for the host's lifetime, so
            // every run is a warm start.
            runtime_metrics.started(&label, false);
            let live = runtime_metrics.live_instances(&label);
            live.inc();
            let started = std::time::Instant::now();
            let result = function.run(&time, state.clone()).await;
            live.dec();
            runtime_metrics.finished(
                &label,
                started.elapsed(),
                result.as_ref().err().map(crate::runtime::InvokeError::kind),
            );
            match result {
                Ok(out) => {
                    if let Some(new_state) = out.state {
                        if let Err(e) = std::fs::write(&*state_file, &new_state) {
                            tracing::warn!(source = %name, "saving source state failed (kept in memory): {e}");
                        }
                        *state = Some(new_state);
                    }
                    out.events
                }
                Err(e) => {
                    tracing::error!(source = %name, tick = %time, kind = e.kind().as_str(), "source run failed; retrying at the next tick: {e}");
                    return TickOutcome::RunFailed;
                }
            }
        }
    };
    let mut outcome = TickOutcome::Emitted;
    for event in events {
        let event = match complete(event, uri, &source.overrides) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(source = %name, "source produced an invalid event, dropped: {e}");
                outcome = TickOutcome::SinkFailed;
                continue;
            }
        };
        let id = event.id.clone();
        match emit(app, source, event).await {
            Ok(()) => {
                metrics.emitted(name);
                tracing::debug!(source = %name, event_id = %id, sink = %source.target, "source event emitted");
            }
            Err(()) => {
                // The delivery engine logged why, and what it did with the
                // event (dead letter or dropped).
                tracing::debug!(source = %name, event_id = %id, sink = %source.target, "emitting a source event failed");
                outcome = TickOutcome::SinkFailed;
            }
        }
    }
    outcome
}

/// Fill in what a source function may leave empty, apply the binding's
/// overrides, and validate.
fn complete(
    mut e: Event,
    uri: &str,
    overrides: &BTreeMap<String, String>,
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
    for (k, v) in overrides {
        e.extensions
            .insert(k.clone(), ExtensionValue::String(v.clone()));
    }
    e.validate()?;
    Ok(e)
}

/// Hand one event to the binding's target: the broker's routing, or the
/// delivery engine with the binding's delivery options (retries, backoff,
/// dead letter), as a trigger's subscriber would get it.
async fn emit(app: &App, source: &Prepared, event: Event) -> Result<(), ()> {
    let Some(to) = source.target.destination() else {
        // Exactly like an event POSTed to the ingress: stored by the broker
        // (the durable log, Kafka), then routed.
        return app.broker.publish(vec![event]).await.map_err(|e| {
            tracing::error!(source = %source.name, "the broker did not take a source event: {e}");
        });
    };
    let reply = app
        .dispatcher
        .deliver_from_source(source.name.as_str(), &to, event, source.delivery.as_ref())
        .await?;
    if let Some(reply) = reply {
        tracing::debug!(source = %source.name, destination = %to, reply_id = %reply.id, "reply to a source event dropped (bind the source to the broker to route replies)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_fills_blanks_and_overrides_win() {
        let mut e = Event::new("", "", "t");
        e.specversion.clear();
        e.extensions
            .insert("team".into(), ExtensionValue::String("guest".into()));
        let overrides = BTreeMap::from([("team".to_owned(), "ops".to_owned())]);
        let e = complete(e, "/sluice/sources/x", &overrides).unwrap();
        assert_eq!(e.source, "/sluice/sources/x");
        assert_eq!(e.specversion, "1.0");
        assert!(!e.id.is_empty());
        assert_eq!(e.extensions["team"], ExtensionValue::String("ops".into()));
        assert!(complete(Event::new("1", "/s", ""), "/u", &overrides).is_err());
    }
}
