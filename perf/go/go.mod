// Go counterparts of perf/'s C programs: no dependencies, so `go build` and
// `go test` work offline with the Go that Debian ships (1.19).
module gcpoolperf

go 1.19
