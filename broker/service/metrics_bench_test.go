package service

import (
	"testing"
	"time"
)

// BenchmarkHistogramObserve is what each produce and fetch now pays for
// its duration histogram (one observation, under contention from all
// cores), to set against the commit it measures.
func BenchmarkHistogramObserve(b *testing.B) {
	h := NewHistogram(latencyBounds())
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			h.Observe(3 * time.Millisecond)
		}
	})
}
