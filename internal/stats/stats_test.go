package stats

import (
	"math"
	"testing"
	"time"
)

func TestSummary(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	s := Of(ds)
	near := func(got, want float64) bool { return math.Abs(got-want) <= want*0.001+0.001 }
	for _, c := range []struct {
		name      string
		got, want float64
	}{{"p50", s.P50, 50}, {"p99", s.P99, 99}, {"max", s.Max, 100}, {"mean", s.Mean, 50.5}} {
		if !near(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if s.Count != 100 {
		t.Errorf("count = %d, want 100", s.Count)
	}
}

func TestClampAndMerge(t *testing.T) {
	a, b := New(), New()
	a.Record(0)
	b.Record(time.Hour)
	a.Merge(b)
	if a.Count() != 2 {
		t.Fatalf("count = %d, want 2", a.Count())
	}
	if a.Percentile(0) != time.Microsecond || a.Max() < 10*time.Minute-time.Second {
		t.Fatalf("clamping: min %v max %v", a.Percentile(0), a.Max())
	}
	a.Reset()
	if a.Count() != 0 || Of(nil).Count != 0 {
		t.Fatal("reset or empty summary not empty")
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := Median(c.in); got != c.want {
			t.Errorf("Median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}
