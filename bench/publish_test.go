package bench

import (
	"encoding/json"
	"testing"
)

func TestAppendPublishDataPadding(t *testing.T) {
	for _, size := range []int{0, 10, 64, 128, 1000} {
		b := appendPublishData(nil, 1700000000123456789, 42, size)
		var v struct {
			T, N int64
			P    string
		}
		if err := json.Unmarshal(b, &v); err != nil || v.T != 1700000000123456789 || v.N != 42 {
			t.Fatalf("size %d: %s: %v", size, b, err)
		}
		bare := len(appendPublishData(nil, 1700000000123456789, 42, 0))
		if size > bare+len(`,"p":""`) && len(b) != size {
			t.Fatalf("size %d: got %d bytes", size, len(b))
		}
		if size <= bare && len(b) != bare {
			t.Fatalf("size %d below the bare object: %d bytes, want %d", size, len(b), bare)
		}
	}
}
