// Package convert turns the generated bindings' events into the kit's
// and back, and a panic into a trap; shared by packages handler and source.
package convert

import (
	"fmt"
	"os"
	"runtime/debug"
	"sort"
	_ "unsafe" // for go:linkname

	witTypes "go.bytecodealliance.org/pkg/wit/types"
	sluice "sluice.dev/guest"
	types "sluice.dev/guest/internal/wit/imports/sluice_handler_types"
)

// TrapOnPanic, deferred, turns a panic into a trap like a Rust panic: the
// stack goes to the host log, then "panic: VALUE" to stderr (whose last
// lines the host puts into a trap's reason), then the instance traps
// without another word. (Left alone, Go's runtime would print the stack
// and exit the instance with status 2, and the reason would be only the
// exit status.)
func TrapOnPanic() {
	v := recover()
	if v == nil {
		return
	}
	sluice.Log.Error(fmt.Sprintf("panic: %v\n%s", v, debug.Stack()))
	fmt.Fprintf(os.Stderr, "panic: %v\n", v)
	abort()
}

// abort is the Go runtime's own crash: a wasm `unreachable`, so a trap.
//
//go:linkname abort runtime.abort
func abort()

func option(o witTypes.Option[string]) string {
	if o.IsSome() {
		return o.Some()
	}
	return ""
}

func some(s string) witTypes.Option[string] {
	if s == "" {
		return witTypes.None[string]()
	}
	return witTypes.Some(s)
}

// FromWit is the kit's event for the bindings' one.
func FromWit(raw types.Event) sluice.Event {
	e := sluice.Event{
		ID:              raw.Id,
		Source:          raw.Source,
		Type:            raw.Type,
		SpecVersion:     raw.Specversion,
		DataContentType: option(raw.Datacontenttype),
		DataSchema:      option(raw.Dataschema),
		Subject:         option(raw.Subject),
		Time:            option(raw.Time),
		Extensions:      make(map[string]any, len(raw.Extensions)),
	}
	for _, x := range raw.Extensions {
		switch x.F1.Tag() {
		case types.ExtensionValue_String:
			e.Extensions[x.F0] = x.F1.String()
		case types.ExtensionValue_Boolean:
			e.Extensions[x.F0] = x.F1.Boolean()
		case types.ExtensionValue_Integer:
			e.Extensions[x.F0] = x.F1.Integer()
		}
	}
	if raw.Data.IsSome() {
		data := raw.Data.Some()
		if data == nil {
			data = []byte{}
		}
		e.Data = data
	}
	return e
}

// ToWit is the bindings' event for the kit's one; extensions go out in
// name order.
func ToWit(e sluice.Event) types.Event {
	names := make([]string, 0, len(e.Extensions))
	for name := range e.Extensions {
		names = append(names, name)
	}
	sort.Strings(names)
	exts := make([]witTypes.Tuple2[string, types.ExtensionValue], 0, len(names))
	for _, name := range names {
		var v types.ExtensionValue
		switch x := e.Extensions[name].(type) {
		case bool:
			v = types.MakeExtensionValueBoolean(x)
		case int64:
			v = types.MakeExtensionValueInteger(x)
		case int:
			v = types.MakeExtensionValueInteger(int64(x))
		case int32:
			v = types.MakeExtensionValueInteger(int64(x))
		case string:
			v = types.MakeExtensionValueString(x)
		default:
			v = types.MakeExtensionValueString(fmt.Sprint(x))
		}
		exts = append(exts, witTypes.Tuple2[string, types.ExtensionValue]{F0: name, F1: v})
	}
	data := witTypes.None[[]uint8]()
	if e.Data != nil {
		data = witTypes.Some(e.Data)
	}
	spec := e.SpecVersion
	if spec == "" {
		spec = "1.0"
	}
	return types.Event{
		Id:              e.ID,
		Source:          e.Source,
		Type:            e.Type,
		Specversion:     spec,
		Datacontenttype: some(e.DataContentType),
		Dataschema:      some(e.DataSchema),
		Subject:         some(e.Subject),
		Time:            some(e.Time),
		Extensions:      exts,
		Data:            data,
	}
}
