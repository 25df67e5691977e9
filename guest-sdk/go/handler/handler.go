// Package handler registers a Sluice event handler (world `handler`):
//
//	func init() { handler.Handle(handle) }
package handler

import (
	witTypes "go.bytecodealliance.org/pkg/wit/types"
	sluice "sluice.dev/guest"
	"sluice.dev/guest/internal/convert"
	"sluice.dev/guest/internal/wit/exports/export_wit_world"
	_ "sluice.dev/guest/internal/wit/exports/handler_exports" // the `handle` export
	types "sluice.dev/guest/internal/wit/imports/sluice_handler_types"
)

// Func handles one event: a reply, nil to consume the event, or an error
// to fail the invocation with its message.
type Func func(sluice.Event) (*sluice.Event, error)

// Handle registers fn as the component's handler. Call it from an init
// function: the host calls the export without running main. A returned
// error fails the invocation with its message (422, like a Rust Err); a
// panic traps it (500, like a Rust panic) with "panic: VALUE" as the
// reason.
func Handle(fn Func) {
	export_wit_world.HandleImpl = func(raw types.Event) export_wit_world.HandleResult {
		defer convert.TrapOnPanic()
		reply, err := fn(convert.FromWit(raw))
		if err != nil {
			return witTypes.Err[witTypes.Option[types.Event]](types.HandlerError{Message: err.Error()})
		}
		if reply == nil {
			return witTypes.Ok[witTypes.Option[types.Event], types.HandlerError](witTypes.None[types.Event]())
		}
		return witTypes.Ok[witTypes.Option[types.Event], types.HandlerError](witTypes.Some(convert.ToWit(*reply)))
	}
}
