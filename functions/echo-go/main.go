// Replies with the event it received, its type suffixed with ".echoed".
// Everything else (id, source, extensions, data) is kept as it came; the
// Go twin of functions/echo.
package main

import (
	"sluice.dev/guest"
	"sluice.dev/guest/handler"
)

func init() { handler.Handle(handle) }

func handle(e sluice.Event) (*sluice.Event, error) {
	return e.ToBuilder().Type(e.Type + ".echoed").Build()
}

func main() {}
