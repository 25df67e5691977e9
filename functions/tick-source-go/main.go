// A source function (world `source`) for tests: each run emits `count`
// (config, default 1) events of type com.example.source.tick whose JSON
// data is their index and the run number, kept in the state; the Go twin
// of tick-source-py.
package main

import (
	"strconv"

	"sluice.dev/guest"
	"sluice.dev/guest/source"
)

func init() { source.Run(run) }

func run(config map[string]string, state []byte) (source.Output, error) {
	runs, _ := strconv.Atoi(string(state))
	count := 1
	if c, ok := config["count"]; ok {
		n, err := strconv.Atoi(c)
		if err != nil {
			return source.Output{}, err
		}
		count = n
	}
	var out source.Output
	for i := 0; i < count; i++ {
		e, err := sluice.NewBuilder("com.example.source.tick").
			Extension("lang", "go").
			JSON(map[string]int{"index": i, "run": runs}).
			Build()
		if err != nil {
			return source.Output{}, err
		}
		out.Events = append(out.Events, *e)
	}
	out.State = []byte(strconv.Itoa(runs + 1))
	return out, nil
}

func main() {}
