//! Metrics of the wasm runtime.

use std::time::Duration;

use prometheus::{
    histogram_opts, opts, Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Registry,
};

use super::register;

/// Runtime metric families.
#[derive(Clone)]
pub struct RuntimeMetrics {
    invocations: IntCounterVec,
    errors: IntCounterVec,
    cold_starts: IntCounterVec,
    warm_starts: IntCounterVec,
    duration: HistogramVec,
    live_instances: IntGaugeVec,
    loaded: IntGauge,
    evictions: IntCounter,
    artifact_compiles: IntCounterVec,
    on_thread: IntCounterVec,
    preempted: IntCounterVec,
}

impl RuntimeMetrics {
    pub(super) fn register(r: &Registry) -> Self {
        Self {
            invocations: register(r, IntCounterVec::new(opts!("invocations_total", "Function invocations started."), &["function"]).expect("valid")),
            errors: register(r, IntCounterVec::new(opts!("invocation_errors_total", "Failed invocations, by error kind."), &["function", "kind"]).expect("valid")),
            cold_starts: register(r, IntCounterVec::new(opts!("cold_starts_total", "Invocations that loaded their function from its precompiled artifact first."), &["function"]).expect("valid")),
            warm_starts: register(r, IntCounterVec::new(opts!("warm_starts_total", "Invocations whose function was already loaded."), &["function"]).expect("valid")),
            duration: register(r, HistogramVec::new(
                histogram_opts!(
                    "invocation_duration_seconds",
                    "Wall time of one invocation: instantiate, call, drop.",
                    vec![0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]
                ),
                &["function"],
            ).expect("valid")),
            live_instances: register(r, IntGaugeVec::new(opts!("live_instances", "Instances alive right now."), &["function"]).expect("valid")),
            loaded: register(r, IntGauge::new("loaded_functions", "Functions loaded in memory (the rest are scaled to zero).").expect("valid")),
            evictions: register(r, IntCounter::new("evictions_total", "Functions unloaded after being idle or to make room.").expect("valid")),
            artifact_compiles: register(r, IntCounterVec::new(opts!("artifact_compiles_total", "Components compiled when loaded, because no usable precompiled artifact was found."), &["function"]).expect("valid")),
            on_thread: register(r, IntCounterVec::new(opts!("invocations_on_thread_total", "Invocations of a component that imports nothing which ran on the calling thread, without a fiber."), &["function"]).expect("valid")),
            preempted: register(r, IntCounterVec::new(opts!("invocations_preempted_total", "Invocations that ran past their first epoch slice on the calling thread and started over on a fiber."), &["function"]).expect("valid")),
        }
    }

    /// A function was loaded (`cold`) or found loaded.
    pub fn started(&self, function: &str, cold: bool) {
        self.invocations.with_label_values(&[function]).inc();
        if cold {
            self.cold_starts.with_label_values(&[function]).inc();
        } else {
            self.warm_starts.with_label_values(&[function]).inc();
        }
    }

    /// An invocation of `function` finished after `elapsed`.
    pub fn finished(&self, function: &str, elapsed: Duration, error: Option<&'static str>) {
        self.duration
            .with_label_values(&[function])
            .observe(elapsed.as_secs_f64());
        if let Some(kind) = error {
            self.errors.with_label_values(&[function, kind]).inc();
        }
    }

    /// An invocation failed before it started (unknown function, load error).
    pub fn failed_to_start(&self, function: &str, kind: &'static str) {
        self.invocations.with_label_values(&[function]).inc();
        self.errors.with_label_values(&[function, kind]).inc();
    }

    /// The gauge of live instances of `function`.
    pub fn live_instances(&self, function: &str) -> IntGauge {
        self.live_instances.with_label_values(&[function])
    }

    /// The metric handles of `function`, resolved once so that the hot path
    /// of an invocation does not hash label values.
    pub fn function(&self, function: &str) -> FunctionMetrics {
        FunctionMetrics {
            invocations: self.invocations.with_label_values(&[function]),
            cold_starts: self.cold_starts.with_label_values(&[function]),
            warm_starts: self.warm_starts.with_label_values(&[function]),
            duration: self.duration.with_label_values(&[function]),
            live_instances: self.live_instances.with_label_values(&[function]),
            errors: self.errors.clone(),
            on_thread: self.on_thread.with_label_values(&[function]),
            preempted: self.preempted.with_label_values(&[function]),
            function: function.to_owned(),
        }
    }

    /// `function` had no usable precompiled artifact and was compiled.
    pub fn artifact_compiled(&self, function: &str) {
        self.artifact_compiles.with_label_values(&[function]).inc();
    }

    /// A function was loaded.
    pub fn loaded(&self) {
        self.loaded.inc();
    }

    /// A loaded function was unloaded: `evicted` when idle or over
    /// capacity, otherwise because it was redeployed or removed.
    pub fn unloaded(&self, evicted: bool) {
        self.loaded.dec();
        if evicted {
            self.evictions.inc();
        }
    }
}

/// The runtime metrics of one function, with its labels resolved (see
/// [`RuntimeMetrics::function`]).
pub struct FunctionMetrics {
    invocations: IntCounter,
    cold_starts: IntCounter,
    warm_starts: IntCounter,
    duration: Histogram,
    live_instances: IntGauge,
    errors: IntCounterVec,
    on_thread: IntCounter,
    preempted: IntCounter,
    function: String,
}

impl FunctionMetrics {
    /// An invocation started, after loading the function (`cold`) or not.
    pub fn started(&self, cold: bool) {
        self.invocations.inc();
        if cold {
            self.cold_starts.inc();
        } else {
            self.warm_starts.inc();
        }
    }

    /// A call finished on the calling thread, without a fiber.
    pub fn ran_on_thread(&self) {
        self.on_thread.inc();
    }

    /// A call on the calling thread ran past its epoch slice and starts
    /// over on a fiber.
    pub fn preempted(&self) {
        self.preempted.inc();
    }

    /// The gauge of live instances.
    pub fn live_instances(&self) -> &IntGauge {
        &self.live_instances
    }

    /// An invocation finished after `elapsed`.
    pub fn finished(&self, elapsed: Duration, error: Option<&'static str>) {
        self.duration.observe(elapsed.as_secs_f64());
        if let Some(kind) = error {
            self.errors
                .with_label_values(&[self.function.as_str(), kind])
                .inc();
        }
    }
}
