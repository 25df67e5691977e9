//! Host bindings of the `sluice:handler` WIT world, and conversion between
//! the host's [`Event`] and the WIT `event` record.

use bytes::Bytes;

use crate::event as host;

wasmtime::component::bindgen!({
    path: "../wit",
    world: "handler",
    exports: { default: async },
});

pub use self::sluice::handler::log::Level;
use self::sluice::handler::types as wit;

impl From<&host::Event> for wit::Event {
    fn from(e: &host::Event) -> Self {
        Self {
            id: e.id.clone(),
            source: e.source.clone(),
            type_: e.ty.clone(),
            specversion: e.specversion.clone(),
            datacontenttype: e.datacontenttype.clone(),
            dataschema: e.dataschema.clone(),
            subject: e.subject.clone(),
            time: e.time.clone(),
            extensions: e
                .extensions
                .iter()
                .map(|(k, v)| {
                    let v = match v {
                        host::ExtensionValue::String(s) => wit::ExtensionValue::String(s.clone()),
                        host::ExtensionValue::Boolean(b) => wit::ExtensionValue::Boolean(*b),
                        host::ExtensionValue::Integer(i) => wit::ExtensionValue::Integer(*i),
                    };
                    (k.clone(), v)
                })
                .collect(),
            data: e.data.as_ref().map(|d| d.to_vec()),
        }
    }
}

impl From<wit::Event> for host::Event {
    fn from(e: wit::Event) -> Self {
        Self {
            id: e.id,
            source: e.source,
            ty: e.type_,
            specversion: e.specversion,
            datacontenttype: e.datacontenttype,
            dataschema: e.dataschema,
            subject: e.subject,
            time: e.time,
            extensions: e
                .extensions
                .into_iter()
                .map(|(k, v)| {
                    let v = match v {
                        wit::ExtensionValue::String(s) => host::ExtensionValue::String(s),
                        wit::ExtensionValue::Boolean(b) => host::ExtensionValue::Boolean(b),
                        wit::ExtensionValue::Integer(i) => host::ExtensionValue::Integer(i),
                    };
                    (k, v)
                })
                .collect(),
            data: e.data.map(Bytes::from),
        }
    }
}

/// The size of a reply as the host holds it, for the reply size cap.
pub fn reply_size(e: &wit::Event) -> usize {
    let strings = [&e.id, &e.source, &e.type_, &e.specversion];
    let optional = [&e.datacontenttype, &e.dataschema, &e.subject, &e.time];
    strings.iter().map(|s| s.len()).sum::<usize>()
        + optional
            .iter()
            .map(|s| s.as_ref().map_or(0, String::len))
            .sum::<usize>()
        + e.extensions
            .iter()
            .map(|(k, v)| {
                k.len()
                    + match v {
                        wit::ExtensionValue::String(s) => s.len(),
                        _ => 8,
                    }
            })
            .sum::<usize>()
        + e.data.as_ref().map_or(0, Vec::len)
}
