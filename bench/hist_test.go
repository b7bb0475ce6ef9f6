package bench

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// refPercentile is the nearest-rank percentile of sorted values.
func refPercentile(sorted []int64, p float64) int64 {
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = max(rank, 1)
	return sorted[min(rank, len(sorted))-1]
}

func TestHistogramBucketsTileTheRange(t *testing.T) {
	prevHi := int64(-1)
	for idx := range histBuckets {
		lo, hi := histBounds(idx)
		if lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, previous ended at %d", idx, lo, prevHi)
		}
		if hi < lo {
			t.Fatalf("bucket %d: hi %d < lo %d", idx, hi, lo)
		}
		if histIndex(lo) != idx || histIndex(hi) != idx {
			t.Fatalf("bucket %d [%d,%d]: index(lo)=%d index(hi)=%d", idx, lo, hi, histIndex(lo), histIndex(hi))
		}
		// Width bound behind the documented relative error.
		if lo >= histSub && float64(hi-lo+1) > float64(lo)/histSub {
			t.Fatalf("bucket %d [%d,%d] wider than lo/%d", idx, lo, hi, histSub)
		}
		prevHi = hi
	}
	if prevHi != histTop {
		t.Fatalf("last bucket ends at %d, want %d", prevHi, histTop)
	}
	if histIndex(math.MaxInt64) != histBuckets-1 || histIndex(-5) != 0 {
		t.Fatal("out-of-range values are not clamped")
	}
}

func TestHistogramPercentilesMatchSortedReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	dists := map[string]func() int64{
		"small-exact":   func() int64 { return rng.Int64N(200) },
		"uniform-ms":    func() int64 { return 1e6 + rng.Int64N(9e6) },
		"exponential":   func() int64 { return int64(rng.ExpFloat64() * 250e3) },
		"lognormal":     func() int64 { return int64(math.Exp(rng.NormFloat64()*1.5 + 12)) },
		"constant":      func() int64 { return 123456 },
		"bimodal":       func() int64 { return []int64{50e3, 40e6}[rng.IntN(2)] + rng.Int64N(1000) },
		"huge-clamped":  func() int64 { return histTop + rng.Int64N(1e12) },
		"zeros-and-big": func() int64 { return []int64{0, 1 << 40}[rng.IntN(2)] },
	}
	ps := []float64{0.001, 1, 10, 50, 90, 99, 99.9, 99.99, 100}
	for name, gen := range dists {
		for _, n := range []int{1, 2, 7, 1000, 100000} {
			var h Histogram
			vals := make([]int64, n)
			for i := range vals {
				vals[i] = gen()
				h.Record(vals[i])
			}
			slices.Sort(vals)
			if h.Count() != int64(n) || h.Min() != vals[0] || h.Max() != vals[n-1] {
				t.Fatalf("%s n=%d: count/min/max %d/%d/%d, want %d/%d/%d", name, n, h.Count(), h.Min(), h.Max(), n, vals[0], vals[n-1])
			}
			for _, p := range ps {
				got, want := h.Percentile(p), refPercentile(vals, p)
				if got < want {
					t.Errorf("%s n=%d p%v = %d, below the true %d", name, n, p, got, want)
				}
				// Same bucket as the reference; the last bucket is
				// open-ended and reports the exact maximum.
				idx := histIndex(want)
				if idx == histBuckets-1 {
					if got != h.Max() {
						t.Errorf("%s n=%d p%v = %d in the open-ended bucket, want Max %d", name, n, p, got, h.Max())
					}
					continue
				}
				_, hi := histBounds(idx)
				if got > hi {
					t.Errorf("%s n=%d p%v = %d, true %d: beyond its bucket (hi %d)", name, n, p, got, want, hi)
				}
				if want < histTop && want >= histSub && float64(got-want) > float64(want)/histSub {
					t.Errorf("%s n=%d p%v = %d, true %d: relative error over 1/%d", name, n, p, got, want, histSub)
				}
			}
		}
	}
}

func TestHistogramEmptyAndMean(t *testing.T) {
	var h Histogram
	if h.Percentile(50) != 0 || h.Mean() != 0 || h.Count() != 0 {
		t.Fatal("empty histogram must report zeros")
	}
	for _, v := range []int64{10, 20, 30, -4} {
		h.Record(v)
	}
	if h.Mean() != 15 || h.Min() != 0 {
		t.Fatalf("mean %v min %d, want 15 and 0 (negative recorded as 0)", h.Mean(), h.Min())
	}
	h.Reset()
	if h.Count() != 0 {
		t.Fatal("Reset kept observations")
	}
}

func TestHistogramMergeEqualsCombinedRecording(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var all Histogram
	parts := make([]Histogram, 5)
	for i := range 50000 {
		v := int64(rng.ExpFloat64() * 1e6)
		all.Record(v)
		parts[i%len(parts)].Record(v)
	}
	var merged Histogram
	merged.Merge(nil)
	merged.Merge(&Histogram{})
	for i := range parts {
		merged.Merge(&parts[i])
	}
	if merged != all {
		t.Fatal("merged histogram differs from recording everything into one")
	}
}

func TestHistogramJSONRoundTrip(t *testing.T) {
	var h Histogram
	for v := int64(1); v < 1e10; v = v*3 + 7 {
		h.Record(v)
	}
	b, err := json.Marshal(&h)
	if err != nil {
		t.Fatal(err)
	}
	var back Histogram
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back != h {
		t.Fatal("round trip changed the histogram")
	}
	for _, bad := range []string{
		`{"count":1,"sub_bits":6,"buckets":[[1,1]]}`,
		`{"count":2,"sub_bits":7,"buckets":[[1,1]]}`,
		`{"count":1,"sub_bits":7,"buckets":[[99999,1]]}`,
		`{"count":-1,"sub_bits":7,"buckets":[[1,-1]]}`,
		`[]`,
	} {
		if err := json.Unmarshal([]byte(bad), &back); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

func FuzzHistogramUnmarshal(f *testing.F) {
	f.Add([]byte(`{"count":1,"sum":5,"min":5,"max":5,"sub_bits":7,"buckets":[[5,1]]}`))
	f.Add([]byte(`{"count":0,"sub_bits":7,"buckets":[]}`))
	f.Add([]byte(`{"count":3,"sub_bits":7,"buckets":[[1,1],[4607,2]]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var h Histogram
		if err := json.Unmarshal(b, &h); err != nil {
			return
		}
		var sum int64
		for _, c := range h.counts {
			sum += c
		}
		if sum != h.Count() {
			t.Fatalf("accepted histogram whose buckets sum to %d, count %d", sum, h.Count())
		}
		for _, p := range []float64{50, 99, 100} {
			h.Percentile(p)
		}
	})
}

func BenchmarkHistogramRecord(b *testing.B) {
	var h Histogram
	b.ReportAllocs()
	v := int64(1)
	for b.Loop() {
		h.Record(v)
		v = (v*7 + 13) & (1<<36 - 1)
	}
}

func BenchmarkHistogramPercentile(b *testing.B) {
	var h Histogram
	for v := int64(1); v < 1e9; v += 9973 {
		h.Record(v)
	}
	b.ReportAllocs()
	for b.Loop() {
		h.Percentile(99.9)
	}
}
