//! Write [Sluice](https://example.invalid/sluice) CloudEvent handlers in Rust.
//!
//! A handler is a function from one [`Event`] to at most one reply event.
//! Compile the crate as a `cdylib` to `wasm32-wasip2` (the compiler writes a
//! component) or to `wasm32-wasip1` and wrap the module with the WASI
//! preview1 adapter (`cargo xtask functions` and `sluice build` do either),
//! and upload it to a host. The crate has no target-specific code.
//!
//! ```ignore
//! use sluice_guest::{handler, log, Error, Event};
//!
//! #[derive(serde::Deserialize)]
//! struct Order { total: f64 }
//!
//! fn handle(event: Event) -> Result<Option<Event>, Error> {
//!     let order: Order = event.json()?;
//!     if order.total < 100.0 {
//!         return Ok(None); // small orders are consumed here
//!     }
//!     log::info(&format!("big order {}", event.id()));
//!     let reply = event.into_builder().ty("com.example.order.big").build()?;
//!     Ok(Some(reply))
//! }
//!
//! handler!(handle);
//! ```
//!
//! The host runs every event in a fresh, sandboxed instance: there is no
//! state shared between events, no file system and no network.
//!
//! With the `source` feature the crate builds a *source function* instead
//! (the `source` world of `wit/source.wit`): see the `source` module and the
//! `source!` macro. Source functions may make outbound HTTP requests to the
//! hosts their binding allows (`source::http::get`).

mod event;

pub use event::{Event, EventBuilder, ExtensionValue};

#[cfg(not(feature = "source"))]
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "handler",
        pub_export_macro: true,
        export_macro_name: "__export_handler_world",
        default_bindings_module: "::sluice_guest::bindings",
        runtime_path: "::sluice_guest::__private::wit_bindgen::rt",
    });
}

// With the `source` feature the crate binds the `source` world instead;
// its `types` and `log` interfaces are the same, so everything else in
// this crate works unchanged.
#[cfg(feature = "source")]
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "source",
        pub_export_macro: true,
        export_macro_name: "__export_source_world",
        default_bindings_module: "::sluice_guest::bindings",
        runtime_path: "::sluice_guest::__private::wit_bindgen::rt",
    });
}

#[cfg(feature = "source")]
pub mod source;

// Lets the bindings above name this crate by its public path.
extern crate self as sluice_guest;

#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen;

    #[cfg(not(feature = "source"))]
    use crate::bindings::sluice::handler::types as wit;

    /// Adapts a user handler to the generated `Guest::handle` signature.
    #[cfg(not(feature = "source"))]
    pub fn call(
        handler: fn(crate::Event) -> Result<Option<crate::Event>, crate::Error>,
        event: wit::Event,
    ) -> Result<Option<wit::Event>, wit::HandlerError> {
        handler(crate::Event::from_wit(event))
            .map(|reply| reply.map(crate::Event::into_wit))
            .map_err(|e| wit::HandlerError { message: e.message })
    }
}

/// Why a handler failed. The message reaches the host log and the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    message: String,
}

impl Error {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// The error's message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Self::new(format!("invalid JSON data: {e}"))
    }
}

impl From<String> for Error {
    fn from(message: String) -> Self {
        Self { message }
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Self {
        Self::new(message)
    }
}

/// Write to the host's structured log; records are tagged by the host with
/// the function name and the id of the event being handled.
pub mod log {
    use crate::bindings::sluice::handler::log::{log, Level};

    /// Log at trace level.
    pub fn trace(message: &str) {
        log(Level::Trace, message)
    }
    /// Log at debug level.
    pub fn debug(message: &str) {
        log(Level::Debug, message)
    }
    /// Log at info level.
    pub fn info(message: &str) {
        log(Level::Info, message)
    }
    /// Log at warn level.
    pub fn warn(message: &str) {
        log(Level::Warn, message)
    }
    /// Log at error level.
    pub fn error(message: &str) {
        log(Level::Error, message)
    }
}

/// Export `fn(Event) -> Result<Option<Event>, Error>` as this component's
/// handler. Use it exactly once per crate.
#[cfg(not(feature = "source"))]
#[macro_export]
macro_rules! handler {
    ($handler:path) => {
        struct __SluiceHandler;

        impl $crate::bindings::Guest for __SluiceHandler {
            fn handle(
                event: $crate::bindings::Event,
            ) -> ::std::result::Result<
                ::std::option::Option<$crate::bindings::Event>,
                $crate::bindings::HandlerError,
            > {
                $crate::__private::call($handler, event)
            }
        }

        $crate::bindings::__export_handler_world!(__SluiceHandler with_types_in $crate::bindings);
    };
}

/// Build this handler without WASI: define, inside the module, the four
/// WASI preview1 functions that Rust's `std` links into every
/// `wasm32-wasip1` module (`environ_get`, `environ_sizes_get`, `fd_write`
/// and `proc_exit`, reached from std's default panic hook and wasi-libc's
/// environment set-up), so the component imports nothing from WASI.
///
/// Such a component is one core instance instead of four (no preview1
/// adapter, no shims), which makes a fresh instance per event about a third
/// cheaper, and the host can run it without switching onto a fiber. The
/// price: the handler sees an empty environment (`std::env::var` is always
/// `Err`, so the function's `env` settings are not visible), whatever it
/// writes to stdout or stderr is discarded, and a panic traps without its
/// message reaching the host log. Use [`log`] for output. A handler that
/// uses another WASI function (clocks, random) still imports that one, and
/// the adapter comes back with it.
///
/// Invoke it once, at the crate root, next to [`handler!`]:
///
/// ```ignore
/// sluice_guest::handler!(handle);
/// sluice_guest::without_wasi!();
/// ```
#[macro_export]
macro_rules! without_wasi {
    () => {
        #[cfg(all(target_arch = "wasm32", target_os = "wasi"))]
        const _: () = {
            /// No environment: zero variables, zero bytes.
            #[no_mangle]
            unsafe extern "C" fn __imported_wasi_snapshot_preview1_environ_sizes_get(
                count: *mut u32,
                size: *mut u32,
            ) -> i32 {
                // SAFETY: wasi-libc passes two valid, aligned out-pointers.
                unsafe {
                    count.write(0);
                    size.write(0);
                }
                0
            }

            /// Nothing to copy: there are no variables.
            #[no_mangle]
            extern "C" fn __imported_wasi_snapshot_preview1_environ_get(
                _environ: *mut *mut u8,
                _buf: *mut u8,
            ) -> i32 {
                0
            }

            /// Every write succeeds and goes nowhere.
            #[no_mangle]
            unsafe extern "C" fn __imported_wasi_snapshot_preview1_fd_write(
                _fd: i32,
                iovs: *const [usize; 2],
                iovs_len: usize,
                written: *mut usize,
            ) -> i32 {
                // SAFETY: the caller passes `iovs_len` (pointer, length)
                // pairs and a valid out-pointer, as WASI's `fd_write` takes.
                unsafe {
                    let total = (0..iovs_len).map(|i| (*iovs.add(i))[1]).sum();
                    written.write(total);
                }
                0
            }

            /// Exiting ends the invocation with a trap.
            #[no_mangle]
            extern "C" fn __imported_wasi_snapshot_preview1_proc_exit(_code: i32) -> ! {
                ::core::arch::wasm32::unreachable()
            }
        };
    };
}
