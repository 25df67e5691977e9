// Misbehaves on purpose, for the host's isolation tests, by event type:
// "raise" panics, "fail" returns an error, "spin" loops forever (the CPU
// deadline must stop it), "hog" allocates without bound (the memory cap
// must stop it), "log" logs one record and consumes the event; anything
// else is echoed.
package main

import (
	"fmt"

	"sluice.dev/guest"
	"sluice.dev/guest/handler"
)

func init() { handler.Handle(handle) }

var hoard [][]byte

func handle(e sluice.Event) (*sluice.Event, error) {
	switch e.Type {
	case "raise":
		panic(fmt.Sprintf("misbehave-go refused %s", e.ID))
	case "fail":
		return nil, fmt.Errorf("misbehave-go failed %s", e.ID)
	case "spin":
		n := 0
		for {
			n += len(e.ID)
		}
	case "hog":
		for {
			block := make([]byte, 1<<20)
			for i := 0; i < len(block); i += 4096 {
				block[i] = 0xa5 // touch every page
			}
			hoard = append(hoard, block)
		}
	case "log":
		sluice.Log.Warnf("misbehave-go logged %s", e.ID)
		return nil, nil
	}
	return &e, nil
}

func main() {}
