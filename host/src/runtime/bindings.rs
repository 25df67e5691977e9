//! Host bindings of the `sluice:handler` WIT world, and conversion between
//! the host's [`Event`] and the WIT `event` record.

use bytes::Bytes;
use wasmtime::component::{Func, TypedFunc};

use crate::event as host;

wasmtime::component::bindgen!({
    path: "../wit",
    world: "handler",
    exports: { default: async },
});

pub use self::sluice::handler::log::Level;
use self::sluice::handler::types as wit;

/// The WIT `event` record as a view of a host [`host::Event`]: lowered
/// into the guest straight from the host's strings and bytes, so an event
/// is not copied into a [`wit::Event`] before the canonical ABI copies it
/// again into the guest's memory.
///
/// It has the shape of `wit::Event`; [`handle_takes_the_view`] checks that
/// against each loaded component once, before the view is passed to it.
#[derive(wasmtime::component::ComponentType, wasmtime::component::Lower)]
#[component(record)]
pub struct EventView<'a> {
    /// `id`, also what the guest log tags its records with.
    pub id: &'a str,
    source: &'a str,
    #[component(name = "type")]
    ty: &'a str,
    specversion: &'a str,
    datacontenttype: Option<&'a str>,
    dataschema: Option<&'a str>,
    subject: Option<&'a str>,
    time: Option<&'a str>,
    /// Empty, and then not allocated, for most events.
    extensions: Vec<(&'a str, ExtensionView<'a>)>,
    data: Option<&'a [u8]>,
}

/// The WIT `extension-value` variant, borrowed.
#[derive(wasmtime::component::ComponentType, wasmtime::component::Lower)]
#[component(variant)]
pub enum ExtensionView<'a> {
    #[component(name = "string")]
    String(&'a str),
    #[component(name = "boolean")]
    Boolean(bool),
    #[component(name = "integer")]
    Integer(i64),
}

impl<'a> From<&'a host::Event> for EventView<'a> {
    fn from(e: &'a host::Event) -> Self {
        Self {
            id: &e.id,
            source: &e.source,
            ty: &e.ty,
            specversion: &e.specversion,
            datacontenttype: e.datacontenttype.as_deref(),
            dataschema: e.dataschema.as_deref(),
            subject: e.subject.as_deref(),
            time: e.time.as_deref(),
            extensions: e
                .extensions
                .iter()
                .map(|(k, v)| {
                    let v = match v {
                        host::ExtensionValue::String(s) => ExtensionView::String(s),
                        host::ExtensionValue::Boolean(b) => ExtensionView::Boolean(*b),
                        host::ExtensionValue::Integer(i) => ExtensionView::Integer(*i),
                    };
                    (k.as_str(), v)
                })
                .collect(),
            data: e.data.as_deref(),
        }
    }
}

/// The `handle` export, typed to take an [`EventView`] (by reference, so
/// an event preempted on the thread is lowered again from the same view)
/// and return the handler's result.
pub type Handle<'a> = TypedFunc<(&'a EventView<'a>,), (HandlerResult,)>;

/// What the `handle` export returns.
pub type HandlerResult = Result<Option<wit::Event>, wit::HandlerError>;

/// Check that the instance's `handle` export takes an [`EventView`], which
/// `HandlerPre::new` has only checked for the bindgen type `wit::Event` of
/// the same shape.
///
/// # Errors
/// When the types differ: a bug in [`EventView`], never the guest's fault
/// once `HandlerPre::new` accepted the component.
pub fn handle_takes_the_view(
    store: impl wasmtime::AsContext,
    handle: Func,
) -> wasmtime::Result<()> {
    handle.typed::<(&EventView<'_>,), (HandlerResult,)>(&store)?;
    Ok(())
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
