// Package source registers a Sluice source function (world `source`),
// which the host runs on its binding's schedule:
//
//	func init() { source.Run(run) }
package source

import (
	witTypes "go.bytecodealliance.org/pkg/wit/types"
	sluice "sluice.dev/guest"
	"sluice.dev/guest/internal/convert"
	"sluice.dev/guest/internal/wit/exports/export_wit_world"
	_ "sluice.dev/guest/internal/wit/exports/source_exports" // the `run` export
	sourceTypes "sluice.dev/guest/internal/wit/imports/sluice_handler_source_types"
	types "sluice.dev/guest/internal/wit/imports/sluice_handler_types"
)

// Output is what one run produced: the events to emit, in order (an empty
// ID, Source or SpecVersion is filled in by the host), and the state for
// the next run (nil keeps the current state; at most 64 KiB).
type Output struct {
	Events []sluice.Event
	State  []byte
}

// Func is one run: the binding's config and the state the last
// successful run returned (nil on the first run). An error fails the run
// (the state stays as it was).
type Func func(config map[string]string, state []byte) (Output, error)

// Run registers fn as the component's source function. Call it from an
// init function. A panic traps the run, like in a handler.
func Run(fn Func) {
	export_wit_world.RunImpl = func(config []witTypes.Tuple2[string, string], state witTypes.Option[[]uint8]) export_wit_world.RunResult {
		defer convert.TrapOnPanic()
		cfg := make(map[string]string, len(config))
		for _, kv := range config {
			cfg[kv.F0] = kv.F1
		}
		var st []byte
		if state.IsSome() {
			st = state.Some()
			if st == nil {
				st = []byte{}
			}
		}
		out, err := fn(cfg, st)
		if err != nil {
			return witTypes.Err[sourceTypes.RunOutput](sourceTypes.SourceError{Message: err.Error()})
		}
		events := make([]types.Event, 0, len(out.Events))
		for _, e := range out.Events {
			events = append(events, convert.ToWit(e))
		}
		next := witTypes.None[[]uint8]()
		if out.State != nil {
			next = witTypes.Some(out.State)
		}
		return witTypes.Ok[sourceTypes.RunOutput, sourceTypes.SourceError](sourceTypes.RunOutput{Events: events, State: next})
	}
}
