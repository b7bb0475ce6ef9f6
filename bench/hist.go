package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/bits"
)

// Histogram layout. Values are non-negative int64 (nanoseconds in this
// package). Values below histSub are counted exactly; above that, every power
// of two [2^e, 2^(e+1)) is split into histSub linear sub-buckets of width
// 2^(e-histSubBits). A value therefore lands in a bucket whose width is at most
// 1/histSub of its lower bound: the relative error of any reported value is
// below 2^-histSubBits (0.8 %). Values at or above 2^histMaxBits are clamped
// into the last bucket; Max still records them exactly.
const (
	histSubBits = 7
	histSub     = 1 << histSubBits // sub-buckets per power of two
	histMaxBits = 42               // 2^42 ns is about 73 minutes
	// histBuckets is the index of the last bucket plus one: the top value
	// 2^histMaxBits-1 has shift histMaxBits-1-histSubBits and mantissa 2*histSub-1.
	histBuckets = (histMaxBits-1-histSubBits)*histSub + 2*histSub
	histTop     = int64(1)<<histMaxBits - 1
)

// Histogram is a fixed-memory log-linear histogram (HDR-like) of int64 values.
// It never allocates in Record and two histograms merge exactly by adding
// bucket counts, so results from many loops and processes combine without
// averaging percentiles.
//
// A Histogram is not safe for concurrent use: each event loop owns its own
// and they are merged after the loop has handed them over.
type Histogram struct {
	count  int64
	sum    int64 // saturates instead of wrapping
	min    int64
	max    int64
	counts [histBuckets]int64
}

// histIndex maps a value to its bucket index.
func histIndex(v int64) int {
	if v < 0 {
		v = 0
	}
	if v > histTop {
		v = histTop
	}
	if v < histSub {
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - 1 - histSubBits
	mantissa := v >> uint(shift) // in [histSub, 2*histSub)
	return shift*histSub + int(mantissa)
}

// histBounds returns the smallest and largest value that map to bucket idx.
func histBounds(idx int) (lo, hi int64) {
	if idx < 2*histSub {
		return int64(idx), int64(idx)
	}
	shift := idx/histSub - 1
	mantissa := int64(idx - shift*histSub)
	lo = mantissa << uint(shift)
	hi = (mantissa+1)<<uint(shift) - 1
	return lo, hi
}

// Record adds one observation. Negative values count as zero.
func (h *Histogram) Record(v int64) {
	if v < 0 {
		v = 0
	}
	if h.count == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.count++
	if h.sum <= math.MaxInt64-v {
		h.sum += v
	} else {
		h.sum = math.MaxInt64
	}
	h.counts[histIndex(v)]++
}

// Merge adds all observations of o to h. The result is exactly the histogram
// that recording both streams into one histogram would have produced.
func (h *Histogram) Merge(o *Histogram) {
	if o == nil || o.count == 0 {
		return
	}
	if h.count == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.count += o.count
	if h.sum <= math.MaxInt64-o.sum {
		h.sum += o.sum
	} else {
		h.sum = math.MaxInt64
	}
	for i := range h.counts {
		h.counts[i] += o.counts[i]
	}
}

// Reset forgets all observations.
func (h *Histogram) Reset() { *h = Histogram{} }

// Count returns the number of observations.
func (h *Histogram) Count() int64 { return h.count }

// Min returns the smallest observation (exact), or 0 when empty.
func (h *Histogram) Min() int64 { return h.min }

// Max returns the largest observation (exact), or 0 when empty.
func (h *Histogram) Max() int64 { return h.max }

// Mean returns the arithmetic mean, or 0 when empty.
func (h *Histogram) Mean() float64 {
	if h.count == 0 {
		return 0
	}
	return float64(h.sum) / float64(h.count)
}

// Percentile returns the value at percentile p (0 < p <= 100) using the
// nearest-rank definition: the smallest recorded value such that at least
// p % of the observations are less than or equal to it. The answer is the
// upper bound of the bucket holding that observation, clamped to [Min, Max],
// so it is never below the true value and exceeds it by less than the bucket
// width (values clamped into the open-ended last bucket report Max). It
// returns 0 for an empty histogram.
func (h *Histogram) Percentile(p float64) int64 {
	if h.count == 0 {
		return 0
	}
	rank := int64(math.Ceil(p / 100 * float64(h.count)))
	if rank < 1 {
		rank = 1
	}
	if rank >= h.count {
		return h.max
	}
	var cum int64
	for i, c := range h.counts {
		cum += c
		if cum >= rank {
			if i == histBuckets-1 {
				return h.max // the last bucket is open-ended
			}
			_, hi := histBounds(i)
			return min(max(hi, h.min), h.max)
		}
	}
	return h.max
}

// histJSON is the wire form: only non-empty buckets, as [index, count] pairs.
type histJSON struct {
	Count   int64      `json:"count"`
	Sum     int64      `json:"sum"`
	Min     int64      `json:"min"`
	Max     int64      `json:"max"`
	SubBits int        `json:"sub_bits"`
	Buckets [][2]int64 `json:"buckets"`
}

// MarshalJSON encodes the histogram sparsely.
func (h *Histogram) MarshalJSON() ([]byte, error) {
	j := histJSON{Count: h.count, Sum: h.sum, Min: h.min, Max: h.max, SubBits: histSubBits, Buckets: [][2]int64{}}
	for i, c := range h.counts {
		if c != 0 {
			j.Buckets = append(j.Buckets, [2]int64{int64(i), c})
		}
	}
	return json.Marshal(j)
}

// UnmarshalJSON decodes what MarshalJSON wrote and checks it is consistent.
func (h *Histogram) UnmarshalJSON(b []byte) error {
	var j histJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	if j.SubBits != histSubBits {
		return fmt.Errorf("histogram: sub_bits %d, want %d", j.SubBits, histSubBits)
	}
	*h = Histogram{count: j.Count, sum: j.Sum, min: j.Min, max: j.Max}
	var total int64
	for _, b := range j.Buckets {
		if b[0] < 0 || b[0] >= histBuckets || b[1] < 0 {
			return fmt.Errorf("histogram: bad bucket [%d %d]", b[0], b[1])
		}
		h.counts[b[0]] += b[1]
		total += b[1]
	}
	if total != j.Count {
		return errors.New("histogram: bucket counts do not add up to count")
	}
	return nil
}

// Percentiles is the summary of a histogram in microseconds, as written to
// result files and read by the report. It is a value computed once by
// Histogram.Summary.
type Percentiles struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean_us"`
	P50   float64 `json:"p50_us"`
	P90   float64 `json:"p90_us"`
	P99   float64 `json:"p99_us"`
	P999  float64 `json:"p999_us"`
	Max   float64 `json:"max_us"`
}

// Summary returns the standard percentiles of a nanosecond histogram in µs.
func (h *Histogram) Summary() Percentiles {
	us := func(ns int64) float64 { return float64(ns) / 1e3 }
	return Percentiles{
		Count: h.count,
		Mean:  h.Mean() / 1e3,
		P50:   us(h.Percentile(50)),
		P90:   us(h.Percentile(90)),
		P99:   us(h.Percentile(99)),
		P999:  us(h.Percentile(99.9)),
		Max:   us(h.max),
	}
}
