// This file lets convert.go declare `abort` without a body (it is linked
// to runtime.abort with go:linkname).
