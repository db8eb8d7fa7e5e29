// Go's side of gcpool-bench's buffer benchmarks: a sync.Pool of buffers, and
// allocating the buffer every time.  The names are the C benchmarks' so
// perf/run pairs them: Go's make([]byte) is what GC_MALLOC_ATOMIC is (memory
// the collector does not scan), make([]unsafe.Pointer) what GC_MALLOC is.
//
//	go test -run '^$' -bench . -cpu 1,2 ./alloc
package alloc

import (
	"sync"
	"testing"
	"unsafe"
)

var sinkBytes []byte
var sinkPtrs []unsafe.Pointer

func poolBuffer(b *testing.B, size int) {
	p := sync.Pool{New: func() any {
		buf := make([]byte, size)
		return &buf
	}}
	b.RunParallel(func(pb *testing.PB) {
		var sink *[]byte
		for pb.Next() {
			bp := p.Get().(*[]byte)
			(*bp)[0] = 1
			sink = bp
			p.Put(bp)
		}
		_ = sink
	})
}

func BenchmarkPoolBuffer4K(b *testing.B)  { poolBuffer(b, 4<<10) }
func BenchmarkPoolBuffer64K(b *testing.B) { poolBuffer(b, 64<<10) }

func makeBytes(b *testing.B, size int) {
	b.RunParallel(func(pb *testing.PB) {
		var sink []byte
		for pb.Next() {
			sink = make([]byte, size)
			sink[0] = 1
		}
		sinkBytes = sink // escapes: heap allocations, as in C
	})
}

func BenchmarkGCMallocAtomic4K(b *testing.B)  { makeBytes(b, 4<<10) }
func BenchmarkGCMallocAtomic64K(b *testing.B) { makeBytes(b, 64<<10) }

func makePtrs(b *testing.B, size int) {
	b.RunParallel(func(pb *testing.PB) {
		var sink []unsafe.Pointer
		for pb.Next() {
			sink = make([]unsafe.Pointer, size/int(unsafe.Sizeof(unsafe.Pointer(nil))))
			sink[0] = nil
		}
		sinkPtrs = sink
	})
}

func BenchmarkGCMalloc4K(b *testing.B)  { makePtrs(b, 4<<10) }
func BenchmarkGCMalloc64K(b *testing.B) { makePtrs(b, 64<<10) }
