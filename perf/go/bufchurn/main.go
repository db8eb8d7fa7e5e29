// bufchurn — perf/bufchurn.c in Go: a server's 64 KiB scratch buffers, from a
// sync.Pool or allocated for every request.
//
//	go run ./bufchurn -pool   -n 200000 -t 2
//	go run ./bufchurn -nopool -n 200000 -t 2
//
// Same requests, same work and the same output as the C program (it prints the
// same checksum for the same -n), so perf/run can put the two side by side.
// Only -kind atomic: a Go []byte is what GC_MALLOC_ATOMIC is, a buffer the
// collector does not scan; Go has no pointer-containing buffer one could fill
// with bytes (its precise collector would reject the garbage "pointers").
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const bufSize = 64 << 10

var (
	usePool = flag.Bool("pool", true, "take buffers from a sync.Pool")
	noPool  = flag.Bool("nopool", false, "allocate every buffer")
	kind    = flag.String("kind", "atomic", "buffer kind: atomic ([]byte); ptr is not available in Go")
	nReq    = flag.Int64("n", 200000, "requests to serve")
	threads = flag.Int("t", runtime.NumCPU(), "goroutines serving them")
	garbage = flag.Int64("garbage", 0, "bytes of small objects each request also allocates")
)

var news int64 // calls of New: the pool's misses

var buffers = sync.Pool{New: func() any {
	atomic.AddInt64(&news, 1)
	b := make([]byte, bufSize)
	return &b // a pointer, so Put does not allocate to box the slice
}}

// serve is the request's work: fill the buffer with a byte that depends on
// the request, then read one word of each cache line back.
func serve(buf []byte, req uint64) uint64 {
	// Doubling copies: Go's fast fill (memmove), where C uses memset.
	buf[0] = byte(req*131 + 7)
	for j := 1; j < len(buf); j *= 2 {
		copy(buf[j:], buf[:j])
	}
	sum := req
	for i := 0; i < len(buf); i += 64 {
		sum += binary.LittleEndian.Uint64(buf[i:]) ^ uint64(i)
	}
	return sum
}

// A request's other allocations: a chain of 128-byte objects, dropped when
// the request ends.
type node struct {
	next    *node
	payload [15]uint64
}

var sinks [1024]struct {
	n   *node
	pad [56]byte // one sink per cache line
}

func makeGarbage(req uint64, slot int) {
	var head *node
	for b := int64(0); b < *garbage; b += 128 {
		head = &node{next: head}
		head.payload[0] = req
	}
	sinks[slot%len(sinks)].n = head // escapes: a real heap allocation, as in C
}

func main() {
	flag.Parse()
	if *noPool {
		*usePool = false
	}
	if *kind != "atomic" {
		fmt.Fprintln(os.Stderr, "bufchurn: only -kind atomic in Go")
		os.Exit(2)
	}
	mode := "nopool"
	if *usePool {
		mode = "pool"
	}
	t := *threads
	runtime.GC() // start from a collected heap, both modes alike
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	start := time.Now()
	var wg sync.WaitGroup
	sums := make([]uint64, t)
	for i := 0; i < t; i++ {
		first, last := *nReq*int64(i)/int64(t), *nReq*int64(i+1)/int64(t)
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			var sum uint64
			for r := first; r < last; r++ {
				var bp *[]byte
				if *usePool {
					bp = buffers.Get().(*[]byte)
				} else {
					b := make([]byte, bufSize)
					bp = &b
				}
				sum += serve(*bp, uint64(r))
				if *usePool {
					buffers.Put(bp)
				}
				makeGarbage(uint64(r), i)
			}
			sums[i] = sum
		}(i)
	}
	wg.Wait()
	elapsed := time.Since(start)
	runtime.ReadMemStats(&ms1)
	var checksum uint64
	for _, s := range sums {
		checksum += s
	}
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	gcs := ms1.NumGC - ms0.NumGC

	fmt.Printf("# bufchurn (Go): %d requests, %d KiB buffers, %d goroutines, %s, %s buffers, %d bytes of garbage per request\n",
		*nReq, bufSize>>10, t, mode, *kind, *garbage)
	fmt.Printf("# wall %.3f s (%.0f ns/request)\n", elapsed.Seconds(), float64(elapsed.Nanoseconds())/float64(*nReq))
	fmt.Printf("# collections %d\n", gcs)
	fmt.Printf("# peak RSS %.1f MiB\n", float64(ru.Maxrss)/1024)
	fmt.Printf("# checksum %016x\n", checksum)
	if *usePool {
		fmt.Printf("# pool news %d (sync.Pool keeps no other statistics)\n", atomic.LoadInt64(&news))
	}
	name := fmt.Sprintf("BenchmarkBufchurn/%s-%s", mode, *kind)
	if *garbage != 0 {
		name += fmt.Sprintf("-garbage%d", *garbage)
	}
	if t != 1 {
		name += fmt.Sprintf("-%d", t)
	}
	fmt.Printf("%s\t%8d\t%s\t%s\t%s\n", name, *nReq,
		pretty(float64(elapsed.Nanoseconds())/float64(*nReq), "ns/op"),
		pretty(float64(gcs), "GCs"), pretty(float64(ru.Maxrss), "peak-RSS-KiB"))
}

// pretty is testing's prettyPrint, so the line reads like go test's.
func pretty(x float64, unit string) string {
	var format string
	switch y := x; {
	case y == 0 || y >= 999.95:
		format = "%10.0f %s"
	case y >= 99.995:
		format = "%12.1f %s"
	case y >= 9.9995:
		format = "%13.2f %s"
	case y >= 0.99995:
		format = "%14.3f %s"
	default:
		format = "%15.4f %s"
	}
	return fmt.Sprintf(format, x, unit)
}
