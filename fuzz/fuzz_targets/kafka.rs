//! Fuzz the CloudEvents Kafka binding: no record may panic it, and every
//! event it reads from a record writes back to a record (in both modes)
//! that reads again to the same event.
//!
//! Input: `key\nheader: value\n...\n\nvalue`; an empty first line means
//! no key, and a value of `-` means none.

#![no_main]

#[allow(dead_code, unused_imports)]
#[path = "../../host/src/event.rs"]
mod event;

#[allow(dead_code, unused_imports)]
#[path = "../../host/src/cloudevents/mod.rs"]
mod cloudevents;

#[allow(dead_code, unused_imports)]
#[path = "../../host/src/kafka/binding.rs"]
mod binding;

use binding::{from_record, to_record, KafkaMode, Origin, Record};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let (head, value) = match input.windows(2).position(|w| w == b"\n\n") {
        Some(at) => (&input[..at], &input[at + 2..]),
        None => (input, &input[..0]),
    };
    let mut lines = head.split(|&b| b == b'\n');
    let key = lines.next().filter(|k| !k.is_empty()).map(<[u8]>::to_vec);
    let headers = lines
        .filter_map(|l| {
            let colon = l.iter().position(|&b| b == b':')?;
            let name = String::from_utf8(l[..colon].to_vec()).ok()?;
            Some((name, l[colon + 1..].trim_ascii().to_vec()))
        })
        .collect();
    let record = Record {
        key,
        headers,
        value: (value != b"-").then(|| value.to_vec()),
    };
    let origin = Origin {
        topic: "fuzz",
        partition: 0,
        offset: 0,
    };
    let Ok(event) = from_record(&record, &origin) else {
        return;
    };
    assert_eq!(event.validate(), Ok(()));
    for mode in [KafkaMode::Binary, KafkaMode::Structured] {
        let written = to_record(&event, mode);
        let again = from_record(&written, &origin)
            .unwrap_or_else(|e| panic!("{mode:?} re-read failed: {e}\n{event:?}"));
        assert_eq!(again.id, event.id, "{mode:?}");
        assert_eq!(again.ty, event.ty, "{mode:?}");
        assert_eq!(again.source, event.source, "{mode:?}");
    }
});
