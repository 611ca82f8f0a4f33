package loadgen

import (
	"math/bits"
	"time"
)

// Histogram records durations in log-linear buckets, as HDR histograms do: exact below
// 64µs, and above that 32 buckets per power of two, so that any quantile is within about
// 3% of the true value while the memory stays fixed (under 8 KiB) however many values are
// recorded. The zero value is ready to use; it is not safe for concurrent use.
type Histogram struct {
	counts [histBuckets]uint64
	n      uint64
	min    time.Duration
	max    time.Duration
}

const (
	histSubBits  = 5                                      // 32 sub-buckets per power of two
	histLinear   = 2 << histSubBits                       // values below 64µs are exact
	histMaxShift = 40                                     // up to 2^45 µs: over a year
	histBuckets  = histLinear + histMaxShift<<histSubBits // linear part + log part
)

// bucketOf returns the bucket index of v microseconds.
func bucketOf(v uint64) int {
	if v < histLinear {
		return int(v)
	}
	shift := bits.Len64(v) - (histSubBits + 1) // v>>shift is in [32, 63]
	if shift > histMaxShift {
		return histBuckets - 1
	}
	return histLinear + (shift-1)<<histSubBits + int(v>>shift) - (1 << histSubBits)
}

// bucketMid returns a representative value (µs) of bucket i: the middle of its span.
func bucketMid(i int) uint64 {
	if i < histLinear {
		return uint64(i)
	}
	j := i - histLinear
	shift := j>>histSubBits + 1
	lo := uint64(j&(1<<histSubBits-1)+(1<<histSubBits)) << shift
	return lo + (uint64(1)<<shift)/2
}

// Record adds one duration; negative ones count as zero.
func (h *Histogram) Record(d time.Duration) {
	d = max(d, 0)
	h.counts[bucketOf(uint64(d/time.Microsecond))]++
	if h.n == 0 || d < h.min {
		h.min = d
	}
	if d > h.max {
		h.max = d
	}
	h.n++
}

// Count returns the number of recorded values.
func (h *Histogram) Count() uint64 { return h.n }

// Min returns the smallest recorded value (0 when empty).
func (h *Histogram) Min() time.Duration { return h.min }

// Max returns the largest recorded value (0 when empty).
func (h *Histogram) Max() time.Duration { return h.max }

// Quantile returns the value below which a fraction q (0..1) of the recorded values lie,
// clamped to [Min, Max]; 0 when empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	q = min(max(q, 0), 1)
	rank := uint64(q*float64(h.n) + 0.5)
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			v := time.Duration(bucketMid(i)) * time.Microsecond
			return min(max(v, h.min), h.max)
		}
	}
	return h.max
}

// Merge adds every value of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
}

// Reset empties h.
func (h *Histogram) Reset() { *h = Histogram{} }
