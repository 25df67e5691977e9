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

use super::binding::{from_record, Origin, Record};
use super::config::{KafkaConfig, KafkaSourceConfig};
use crate::app::App;
use crate::event::Event;
use crate::registry::Name;

/// Start one task per declared source. They run until the process exits.
///
/// # Errors
/// When librdkafka refuses a source's configuration or subscription.
pub fn start(app: &Arc<App>, config: &KafkaConfig) -> Result<(), rdkafka::error::KafkaError> {
    for (name, source) in &config.sources {
        let consumer = consumer(config, source)?;
        let topics: Vec<&str> = source.topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics)?;
        tracing::info!(source = %name, topics = ?source.topics, group = %source.group, "kafka source started");
        tokio::spawn(run(app.clone(), name.clone(), consumer, source.ordered));
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
        tokio::spawn(run(app.clone(), name, consumer, true));
    }
    Ok(())
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

async fn run(app: Arc<App>, name: Name, consumer: StreamConsumer, ordered: bool) {
    let batching = !ordered && app.broker.is_durable();
    loop {
        let first = match consumer.recv().await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(source = %name, "kafka: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
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
        if hand_on(&app, &name, &batch, ordered).await {
            for msg in &batch {
                if let Err(e) = consumer.store_offset_from_message(msg) {
                    tracing::warn!(source = %name, "storing the offset failed: {e}");
                }
            }
            continue;
        }
        // Not handed on (the log refused): read the batch again later.
        let _ = consumer.commit_consumer_state(CommitMode::Async);
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut first_offsets: BTreeMap<(&str, i32), i64> = BTreeMap::new();
        for msg in &batch {
            let o = first_offsets
                .entry((msg.topic(), msg.partition()))
                .or_insert(msg.offset());
            *o = (*o).min(msg.offset());
        }
        for ((topic, partition), offset) in first_offsets {
            let to = rdkafka::Offset::Offset(offset);
            if let Err(e) = consumer.seek(topic, partition, to, Duration::from_secs(5)) {
                tracing::error!(source = %name, "seeking back failed: {e}");
            }
        }
    }
}

/// Hand the records' events on; `true` when their offsets may be committed.
async fn hand_on(app: &App, name: &Name, batch: &[BorrowedMessage<'_>], ordered: bool) -> bool {
    let events: Vec<Event> = batch.iter().filter_map(|m| to_event(name, m)).collect();
    app.metrics.kafka.consumed(
        name.as_str(),
        batch.len() as u64,
        (batch.len() - events.len()) as u64,
    );
    if !ordered && app.broker.is_durable() {
        return match app.broker.publish(events).await {
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
        app.broker.route_and_wait(event).await;
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
