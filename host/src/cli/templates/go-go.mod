module {{name}}

go 1.27.1

require (
	go.bytecodealliance.org/pkg v0.4.0
	sluice.dev/guest v{{version}}
)

// The guest kit and the runtime package its bindings import, both in this
// project: it builds without a module proxy.
replace (
	go.bytecodealliance.org/pkg => ./sluice-guest/witpkg
	sluice.dev/guest => ./sluice-guest
)
