//! Kafka sources: each a consumer-group member whose records become events.
//!
//! A record's offset is stored for commit only after its event has been
//! handed on durably: in ordered mode once every delivery of the event has
//! ended, in unordered mode once the event is in the durable log. A crash
//! before that re-delivers the record instead of losing it.

use std::sync::Arc;

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::ClientConfig;

use super::binding::{from_record, Origin, Record};
use super::config::{KafkaConfig, KafkaSourceConfig};
use crate::app::App;
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

async fn run(app: Arc<App>, name: Name, consumer: StreamConsumer, ordered: bool) {
    loop {
        let msg = match consumer.recv().await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(source = %name, "kafka: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                continue;
            }
        };
        if hand_on(&app, &name, &msg, ordered).await {
            if let Err(e) = consumer.store_offset_from_message(&msg) {
                tracing::warn!(source = %name, "storing the offset failed: {e}");
            }
        } else {
            // Not handed on (the log refused it): read it again.
            let _ = consumer.commit_consumer_state(CommitMode::Async);
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            if let Err(e) = consumer.seek(
                msg.topic(),
                msg.partition(),
                rdkafka::Offset::Offset(msg.offset()),
                std::time::Duration::from_secs(5),
            ) {
                tracing::error!(source = %name, "seeking back failed: {e}");
            }
        }
    }
}

/// Turn `msg` into an event and hand it on; `true` when its offset may be
/// committed.
async fn hand_on(app: &App, name: &Name, msg: &BorrowedMessage<'_>, ordered: bool) -> bool {
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
    let event = match from_record(&record, &origin) {
        Ok(e) => e,
        Err(e) => {
            // A record that can never become an event: skip it, loudly.
            tracing::error!(source = %name, topic = origin.topic, partition = origin.partition, offset = origin.offset, "invalid CloudEvent record skipped: {e}");
            return true;
        }
    };
    tracing::debug!(source = %name, event_id = %event.id, partition = origin.partition, offset = origin.offset, "kafka record received");
    if ordered {
        // One at a time: the next record waits until this one's deliveries
        // ended, which keeps per-partition order.
        app.dispatcher.dispatch_tracked(event).await.await;
        return true;
    }
    match &app.durable {
        Some(d) => match d.accept(&app.dispatcher, vec![event]).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(source = %name, "durable log refused a kafka record: {e}");
                false
            }
        },
        None => {
            app.dispatcher.dispatch_tracked(event).await.await;
            true
        }
    }
}
