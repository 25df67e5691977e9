module echo-go

go 1.27.1

require (
	go.bytecodealliance.org/pkg v0.4.0
	sluice.dev/guest v0.1.0
)

replace (
	go.bytecodealliance.org/pkg => ../../guest-sdk/go/witpkg
	sluice.dev/guest => ../../guest-sdk/go
)
