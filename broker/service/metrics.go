package service

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Metrics are the service's counters, the same whichever front-end a
// request came through; front-ends expose them (HTTP: /metrics).
type Metrics struct {
	ProducedMsgs, ProducedBytes atomic.Uint64
	FetchedMsgs, FetchedBytes   atomic.Uint64
	LeaderChanges               atomic.Uint64
	CommitLatency               *Histogram
	// ProduceLatency is the service time of acknowledged produce requests
	// (every front-end): authorization, validation, commit and apply.
	ProduceLatency *Histogram
	// FetchLatency is the service time of fetches that returned messages,
	// any long-poll wait for the first one included.
	FetchLatency *Histogram
}

// latencyBounds are the histograms' upper bounds in seconds.
func latencyBounds() []float64 {
	return []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5}
}

func newMetrics() *Metrics {
	return &Metrics{CommitLatency: NewHistogram(latencyBounds()), ProduceLatency: NewHistogram(latencyBounds()),
		FetchLatency: NewHistogram(latencyBounds())}
}

func (m *Metrics) produced(msgs, bytes int) {
	m.ProducedMsgs.Add(uint64(msgs))
	m.ProducedBytes.Add(uint64(bytes))
}

func (m *Metrics) fetched(msgs, bytes int) {
	m.FetchedMsgs.Add(uint64(msgs))
	m.FetchedBytes.Add(uint64(bytes))
}

// Histogram is a Prometheus-style cumulative histogram of durations.
type Histogram struct {
	mu      sync.Mutex
	bounds  []float64 // seconds
	counts  []uint64
	sum     float64
	samples uint64
}

// NewHistogram returns a histogram with the given upper bounds (seconds).
func NewHistogram(bounds []float64) *Histogram {
	return &Histogram{bounds: bounds, counts: make([]uint64, len(bounds))}
}

// Observe records one duration.
func (h *Histogram) Observe(d time.Duration) {
	s := d.Seconds()
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, b := range h.bounds {
		if s <= b {
			h.counts[i]++
		}
	}
	h.sum += s
	h.samples++
}

// WriteText writes the histogram in the Prometheus text format.
func (h *Histogram) WriteText(sb *strings.Builder, name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, b := range h.bounds {
		fmt.Fprintf(sb, "%s_bucket{le=\"%g\"} %d\n", name, b, h.counts[i])
	}
	fmt.Fprintf(sb, "%s_bucket{le=\"+Inf\"} %d\n%s_sum %g\n%s_count %d\n", name, h.samples, name, h.sum, name, h.samples)
}

// Count returns how many durations were observed.
func (h *Histogram) Count() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.samples
}
