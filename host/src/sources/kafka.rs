//! Kafka sources: each a consumer-group member whose records become events.
//!
//! A record's offset is stored for commit only after its event has been
//! handed on durably: in ordered mode once every delivery of the event has
//! ended, in unordered mode once the event is in the durable log. A crash
//! before that re-delivers the record instead of losing it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::ClientConfig;

use super::{Source, SourceContext};
use crate::config::{KafkaConfig, KafkaSourceConfig};
use crate::delivery::Ended;
use crate::event::Event;
use crate::kafka::binding::{from_record, Origin, Record};
use crate::kafka::release::Detached;
use crate::name::Name;

/// Longest a stopping source waits for its consumer to close (leave the
/// group, commit stored offsets) before it lets the close finish in the
/// background.
pub const CLOSE_LIMIT: Duration = Duration::from_secs(2);

/// One consumer-group member: a `[kafka.sources.NAME]` source, or the
/// consumer of `[kafka.broker]`'s topic.
pub struct KafkaSource {
    name: Name,
    /// Shared with the blocking thread a seek runs on.
    consumer: Detached<Arc<StreamConsumer>>,
    ordered: bool,
    /// The first topic it reads, for [`Reach`].
    topic: String,
}

/// Whether a Kafka source's consumer reached its cluster (for
/// `/readyz`): holds the consumer until dropped (on a thread of its own).
pub struct Reach {
    consumer: Detached<Arc<StreamConsumer>>,
    topic: String,
}

impl KafkaSource {
    /// A [`Reach`] of this source's consumer.
    pub fn reach(&self) -> Reach {
        Reach {
            consumer: Detached::new(Arc::clone(&self.consumer)),
            topic: self.topic.clone(),
        }
    }
}

impl Reach {
    /// Whether the cluster answered a metadata request for the topic
    /// within `timeout` (asked on a blocking thread: librdkafka's call
    /// blocks).
    pub async fn answered(&self, timeout: Duration) -> bool {
        let (consumer, topic) = (Arc::clone(&self.consumer), self.topic.clone());
        tokio::task::spawn_blocking(move || {
            consumer
                .client()
                .fetch_metadata(Some(&topic), timeout)
                .is_ok()
        })
        .await
        .unwrap_or(false)
    }
}

/// Build and subscribe one consumer per declared source, and one for the
/// broker's topic when Kafka is the broker. Start them with
/// `Sources::spawn`.
///
/// # Errors
/// When librdkafka refuses a source's configuration or subscription.
pub fn prepare(config: &KafkaConfig) -> Result<Vec<KafkaSource>, rdkafka::error::KafkaError> {
    let mut sources = Vec::new();
    for (name, source) in &config.sources {
        let consumer = consumer(config, source)?;
        let topics: Vec<&str> = source.topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics)?;
        tracing::info!(source = %name, topics = ?source.topics, group = %source.group, "kafka source started");
        sources.push(KafkaSource {
            name: name.clone(),
            consumer: Detached::new(Arc::new(consumer)),
            ordered: source.ordered,
            topic: source.topics.first().cloned().unwrap_or_default(),
        });
    }
    if let Some(broker) = &config.broker {
        let source = KafkaSourceConfig {
            topics: vec![broker.topic.clone()],
            group: broker.group.clone(),
            ordered: true,
            start: "earliest".into(),
            properties: broker.properties.clone(),
        };
        let consumer = consumer(config, &source)?;
        consumer.subscribe(&[broker.topic.as_str()])?;
        tracing::info!(topic = %broker.topic, group = %broker.group, "kafka broker mode: consuming");
        let name: Name = "kafka-broker".parse().unwrap_or_else(|_| unreachable!());
        sources.push(KafkaSource {
            name,
            consumer: Detached::new(Arc::new(consumer)),
            ordered: true,
            topic: broker.topic.clone(),
        });
    }
    Ok(sources)
}

fn consumer(
    config: &KafkaConfig,
    source: &KafkaSourceConfig,
) -> Result<StreamConsumer, rdkafka::error::KafkaError> {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &config.brokers)
        .set("group.id", &source.group)
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", &source.start);
    for (k, v) in config.properties.iter().chain(&source.properties) {
        c.set(k, v);
    }
    c.create()
}

/// Most records handed to the durable log in one append (unordered mode).
const MAX_BATCH: usize = 512;

impl Source for KafkaSource {
    fn name(&self) -> &Name {
        &self.name
    }

    /// Consume until the shutdown signal; the batch in hand is handed on
    /// first. Then close the consumer, waiting at most [`CLOSE_LIMIT`].
    async fn run(self, cx: SourceContext) {
        consume(&self.name, &self.consumer, self.ordered, &cx).await;
        let what = format!("the consumer of kafka source `{}`", self.name);
        self.consumer.release(&what, CLOSE_LIMIT).await;
        tracing::debug!(source = %self.name, "kafka source stopped");
    }
}

async fn consume(name: &Name, consumer: &Arc<StreamConsumer>, ordered: bool, cx: &SourceContext) {
    let batching = !ordered && cx.durable();
    let stop = cx.shutdown();
    loop {
        let first = tokio::select! {
            m = consumer.recv() => m,
            () = stop.cancelled() => return,
        };
        let first = match first {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(source = %name, "kafka: {e}");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(200)) => {}
                    () = stop.cancelled() => return,
                }
                continue;
            }
        };
        let mut batch = vec![first];
        // Unordered: take what is already fetched, so one fsync covers many.
        while batching && batch.len() < MAX_BATCH {
            match tokio::time::timeout(Duration::ZERO, consumer.recv()).await {
                Ok(Ok(m)) => batch.push(m),
                _ => break,
            }
        }
        if hand_on(cx, name, &batch, ordered).await {
            for msg in &batch {
                if let Err(e) = consumer.store_offset_from_message(msg) {
                    tracing::warn!(source = %name, "storing the offset failed: {e}");
                }
            }
            continue;
        }
        // Not handed on (the log refused): read the batch again later.
        let _ = consumer.commit_consumer_state(CommitMode::Async);
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
            () = stop.cancelled() => return,
        }
        let mut first_offsets: BTreeMap<(&str, i32), i64> = BTreeMap::new();
        for msg in &batch {
            let o = first_offsets
                .entry((msg.topic(), msg.partition()))
                .or_insert(msg.offset());
            *o = (*o).min(msg.offset());
        }
        let seeks: Vec<(String, i32, i64)> = first_offsets
            .into_iter()
            .map(|((topic, partition), offset)| (topic.to_owned(), partition, offset))
            .collect();
        drop(batch);
        // librdkafka's seek blocks (up to its timeout): not on an async worker.
        let (seeker, source) = (consumer.clone(), name.clone());
        let _ = tokio::task::spawn_blocking(move || {
            for (topic, partition, offset) in seeks {
                let to = rdkafka::Offset::Offset(offset);
                if let Err(e) = seeker.seek(&topic, partition, to, Duration::from_secs(5)) {
                    tracing::error!(source = %source, "seeking back failed: {e}");
                }
            }
        })
        .await;
    }
}

/// Hand the records' events on; `true` when their offsets may be committed.
async fn hand_on(
    cx: &SourceContext,
    name: &Name,
    batch: &[BorrowedMessage<'_>],
    ordered: bool,
) -> bool {
    let events: Vec<Event> = batch.iter().filter_map(|m| to_event(name, m)).collect();
    cx.metrics().kafka.consumed(
        name.as_str(),
        batch.len() as u64,
        (batch.len() - events.len()) as u64,
    );
    if !ordered && cx.durable() {
        return match cx.publish(events).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(source = %name, "the broker refused kafka records: {e}");
                false
            }
        };
    }
    // One at a time: the next record waits until this one's deliveries
    // ended, which keeps per-partition order (the topic is the log).
    for event in events {
        if cx.route_and_wait(event).await == Ended::Abandoned {
            // The host is stopping: this offset stays uncommitted, so the
            // record is read again at the next start.
            return false;
        }
    }
    true
}

/// The event `msg` carries; `None` (logged) for an invalid CloudEvent.
fn to_event(name: &Name, msg: &BorrowedMessage<'_>) -> Option<Event> {
    let record = Record {
        key: msg.key().map(<[u8]>::to_vec),
        headers: msg
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec()))
                    .collect()
            })
            .unwrap_or_default(),
        value: msg.payload().map(<[u8]>::to_vec),
    };
    let origin = Origin {
        topic: msg.topic(),
        partition: msg.partition(),
        offset: msg.offset(),
    };
    match from_record(&record, &origin) {
        Ok(event) => {
            tracing::debug!(source = %name, event_id = %event.id, partition = origin.partition, offset = origin.offset, "kafka record received");
            Some(event)
        }
        Err(e) => {
            // A record that can never become an event: skip it, loudly.
            tracing::error!(source = %name, topic = origin.topic, partition = origin.partition, offset = origin.offset, "invalid CloudEvent record skipped: {e}");
            None
        }
    }
}
