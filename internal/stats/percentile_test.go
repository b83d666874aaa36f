package stats

import (
	"math/bits"
	"sort"
	"testing"
	"time"
)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func series(from, to int, unit time.Duration) []time.Duration {
	var ds []time.Duration
	for i := from; i <= to; i++ {
		ds = append(ds, time.Duration(i)*unit)
	}
	return ds
}

func repeat(n int, d time.Duration) []time.Duration {
	ds := make([]time.Duration, n)
	for i := range ds {
		ds[i] = d
	}
	return ds
}

func histogramOf(ds []time.Duration) *Histogram {
	h := New()
	for _, d := range ds {
		h.Record(d)
	}
	return h
}

// The percentile definition, pinned on known distributions: the value of
// rank round-half-up(p/100 × count) (at least 1), read as the highest value
// equivalent to it at 3 significant digits (exact below 2048 µs; then the
// unit doubles with each power of two); the 0th percentile is the lowest
// equivalent value.
func TestPercentileDefinition(t *testing.T) {
	bimodal := append(repeat(90, ms(1)), repeat(10, time.Second)...)
	for _, c := range []struct {
		name string
		ds   []time.Duration
		p    float64
		want time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one value, p0", []time.Duration{ms(1)}, 0, ms(1)},
		{"one value, p100", []time.Duration{ms(1)}, 100, ms(1)},
		{"1..10 ms, p14 rounds the rank 1.4 down", series(1, 10, time.Millisecond), 14, ms(1)},
		{"1..10 ms, p15 rounds the rank 1.5 up", series(1, 10, time.Millisecond), 15, ms(2)},
		{"1..10 ms, p50 at 4 µs resolution", series(1, 10, time.Millisecond), 50, 5003 * time.Microsecond},
		{"1..10 ms, p100 at 8 µs resolution", series(1, 10, time.Millisecond), 100, 10007 * time.Microsecond},
		{"1..10 ms, p0 lowest equivalent", series(1, 10, time.Millisecond), 0, ms(1)},
		{"1..10 ms, over 100 is the max", series(1, 10, time.Millisecond), 150, 10007 * time.Microsecond},
		{"1..10 ms, below 0 is p0", series(1, 10, time.Millisecond), -5, ms(1)},
		{"1..100 ms, p50", series(1, 100, time.Millisecond), 50, 50015 * time.Microsecond},
		{"1..100 ms, p99", series(1, 100, time.Millisecond), 99, 99007 * time.Microsecond},
		{"1..100 ms, p99.9 is the max", series(1, 100, time.Millisecond), 99.9, 100031 * time.Microsecond},
		{"1..2047 µs exact, p50", series(1, 2047, time.Microsecond), 50, 1024 * time.Microsecond},
		{"bimodal, p90 in the low mode", bimodal, 90, ms(1)},
		{"bimodal, p91 in the high mode", bimodal, 91, 1000447 * time.Microsecond},
		{"sub-µs clamped to 1 µs", []time.Duration{0, 500, -time.Second}, 50, time.Microsecond},
		{"over 10 min clamped", []time.Duration{2 * time.Hour}, 100, 600309759 * time.Microsecond},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := histogramOf(c.ds).Percentile(c.p); got != c.want {
				t.Fatalf("Percentile(%v) = %v, want %v", c.p, got, c.want)
			}
		})
	}
}

// refPercentile is the definition above written out independently of
// HdrHistogram.
func refPercentile(ds []time.Duration, p float64) time.Duration {
	us := make([]int64, len(ds))
	for i, d := range ds {
		us[i] = min(max(d.Microseconds(), 1), 600_000_000)
	}
	sort.Slice(us, func(i, j int) bool { return us[i] < us[j] })
	rank := int(p/100*float64(len(us)) + 0.5)
	rank = min(max(rank, 1), len(us))
	v := us[rank-1]
	unit := int64(1)
	if v >= 2048 {
		unit = 1 << (bits.Len64(uint64(v)) - 1 - 10)
	}
	lowest := v / unit * unit
	if p == 0 {
		return time.Duration(lowest) * time.Microsecond
	}
	return time.Duration(lowest+unit-1) * time.Microsecond
}

func TestPercentileMatchesReference(t *testing.T) {
	skewed := make([]time.Duration, 0, 5000)
	for i := range 5000 {
		skewed = append(skewed, time.Duration(i*i%7919+1)*time.Duration(1+i%97)*time.Microsecond)
	}
	for name, ds := range map[string][]time.Duration{
		"1..1000 ms":   series(1, 1000, time.Millisecond),
		"1..5000 µs":   series(1, 5000, time.Microsecond),
		"skewed":       skewed,
		"three":        {ms(3), ms(1), ms(2)},
		"all the same": repeat(7, 1234567*time.Microsecond),
	} {
		t.Run(name, func(t *testing.T) {
			h := histogramOf(ds)
			for _, p := range []float64{0, 1, 10, 25, 33.3, 50, 66.7, 75, 90, 95, 99, 99.9, 99.99, 100} {
				if got, want := h.Percentile(p), refPercentile(ds, p); got != want {
					t.Errorf("p%v = %v, reference %v", p, got, want)
				}
			}
			if got, want := h.Max(), refPercentile(ds, 100); got != want {
				t.Errorf("Max = %v, reference %v", got, want)
			}
		})
	}
}

// Summary's fields are the percentiles they are named after, in
// milliseconds.
func TestSummaryFields(t *testing.T) {
	ds := series(1, 1000, time.Millisecond)
	s := Of(ds)
	for _, c := range []struct {
		name string
		got  float64
		p    float64
	}{{"p50", s.P50, 50}, {"p75", s.P75, 75}, {"p95", s.P95, 95}, {"p99", s.P99, 99}, {"p999", s.P999, 99.9}, {"max", s.Max, 100}} {
		t.Run(c.name, func(t *testing.T) {
			if want := Millis(refPercentile(ds, c.p)); c.got != want {
				t.Fatalf("%s = %v ms, want %v ms", c.name, c.got, want)
			}
		})
	}
	if s.Count != 1000 || s.Mean < 500 || s.Mean > 501 {
		t.Fatalf("count %d, mean %v", s.Count, s.Mean)
	}
	if got := Millis(1500 * time.Microsecond); got != 1.5 {
		t.Fatalf("Millis(1.5 ms) = %v", got)
	}
}

// Merging per-goroutine histograms gives the percentiles of the union.
func TestMergeIsUnion(t *testing.T) {
	a, b := series(1, 500, time.Millisecond), series(400, 2000, time.Millisecond)
	h := histogramOf(a)
	h.Merge(histogramOf(b))
	all := append(append([]time.Duration(nil), a...), b...)
	for _, p := range []float64{10, 50, 90, 99} {
		if got, want := h.Percentile(p), refPercentile(all, p); got != want {
			t.Errorf("p%v of the merge = %v, of the union %v", p, got, want)
		}
	}
}
