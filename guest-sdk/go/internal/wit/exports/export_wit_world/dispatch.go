// Package export_wit_world is where the generated export glue
// (../handler_exports for world `handler`, ../source_exports for world
// `source`) calls in: packages handler and source set the Impl variables
// when a function registers. Written by hand, not generated.
package export_wit_world

import (
	witTypes "go.bytecodealliance.org/pkg/wit/types"
	sourceTypes "sluice.dev/guest/internal/wit/imports/sluice_handler_source_types"
	types "sluice.dev/guest/internal/wit/imports/sluice_handler_types"
)

// HandleResult is what `handle` returns.
type HandleResult = witTypes.Result[witTypes.Option[types.Event], types.HandlerError]

// RunResult is what `run` returns.
type RunResult = witTypes.Result[sourceTypes.RunOutput, sourceTypes.SourceError]

// HandleImpl is the registered handler (handler.Handle sets it).
var HandleImpl func(types.Event) HandleResult

// RunImpl is the registered source function (source.Run sets it).
var RunImpl func([]witTypes.Tuple2[string, string], witTypes.Option[[]uint8]) RunResult

// Handle is the `handle` export of the `handler` world.
func Handle(event types.Event) HandleResult {
	if HandleImpl == nil {
		return witTypes.Err[witTypes.Option[types.Event]](types.HandlerError{
			Message: "no handler registered: call handler.Handle(fn) in an init function",
		})
	}
	return HandleImpl(event)
}

// Run is the `run` export of the `source` world.
func Run(config []witTypes.Tuple2[string, string], state witTypes.Option[[]uint8]) RunResult {
	if RunImpl == nil {
		return witTypes.Err[sourceTypes.RunOutput](sourceTypes.SourceError{
			Message: "no source function registered: call source.Run(fn) in an init function",
		})
	}
	return RunImpl(config, state)
}
