// The {{name}} handler: replies with a copy of the event, its type
// suffixed with ".handled".
package main

import (
	"sluice.dev/guest"
	"sluice.dev/guest/handler"
)

func init() { handler.Handle(handle) }

func handle(e sluice.Event) (*sluice.Event, error) {
	sluice.Log.Infof("{{name}} got %s", e.ID)
	return e.ToBuilder().Type(e.Type + ".handled").Build()
}

// The host calls the handler's export; main never runs.
func main() {}
