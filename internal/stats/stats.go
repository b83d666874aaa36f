// Package stats records latencies in HdrHistograms and reads percentiles
// from them, with one definition for every test and benchmark of the
// project: a percentile is HdrHistogram's ValueAtQuantile (the highest
// value equivalent, at 3 significant digits, to the recorded value at that
// rank; p0 is the lowest equivalent value instead), over microseconds from
// 1 µs to 10 minutes.
package stats

import (
	"slices"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

const (
	lowestMicros  = 1
	highestMicros = 600_000_000 // 10 minutes
	sigFigs       = 3
)

// Histogram records durations with microsecond resolution. It is not safe
// for concurrent use; callers lock or keep one per goroutine and Merge.
type Histogram struct {
	h *hdrhistogram.Histogram
}

// New returns an empty histogram.
func New() *Histogram {
	return &Histogram{h: hdrhistogram.New(lowestMicros, highestMicros, sigFigs)}
}

// Record adds one duration, clamped to [1 µs, 10 min].
func (h *Histogram) Record(d time.Duration) {
	us := min(max(d.Microseconds(), lowestMicros), highestMicros)
	_ = h.h.RecordValue(us) // in range by construction
}

// Merge adds every value of o to h.
func (h *Histogram) Merge(o *Histogram) { h.h.Merge(o.h) }

// Reset empties h.
func (h *Histogram) Reset() { h.h.Reset() }

// Count is the number of recorded values.
func (h *Histogram) Count() int64 { return h.h.TotalCount() }

// Percentile returns the value at percentile p (0 to 100).
func (h *Histogram) Percentile(p float64) time.Duration {
	return time.Duration(h.h.ValueAtQuantile(p)) * time.Microsecond
}

// Max returns the largest recorded value (at the histogram's precision).
func (h *Histogram) Max() time.Duration { return time.Duration(h.h.Max()) * time.Microsecond }

// Summary is a histogram's percentiles in milliseconds.
type Summary struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P75   float64 `json:"p75"`
	P95   float64 `json:"p95"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
	Max   float64 `json:"max"`
}

// Summary returns h's count, mean and percentiles in milliseconds.
func (h *Histogram) Summary() Summary {
	ms := func(p float64) float64 { return Millis(h.Percentile(p)) }
	return Summary{Count: h.Count(), Mean: h.h.Mean() / 1000, P50: ms(50), P75: ms(75), P95: ms(95),
		P99: ms(99), P999: ms(99.9), Max: Millis(h.Max())}
}

// Of summarizes a handful of durations (one per leader kill, say) with the
// same definition as a histogram of them.
func Of(ds []time.Duration) Summary {
	h := New()
	for _, d := range ds {
		h.Record(d)
	}
	return h.Summary()
}

// Millis is d in (fractional) milliseconds.
func Millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Median is the middle of a handful of per-round figures (ratios, rates):
// the mean of the two middle values for an even count, 0 for none.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
