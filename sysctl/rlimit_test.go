package sysctl

import (
	"math"
	"syscall"
	"testing"
)

func TestDefaultMaxConns(t *testing.T) {
	for _, c := range []struct {
		nofile uint64
		want   int
	}{
		{0, 0},
		{1, 1},
		{64, 32},
		{512, 256}, // small limits: half
		{1024, 752},
		{20000, 19432},
		{1 << 20, 1031936},
		{math.MaxUint64, math.MaxInt32 - 256 - math.MaxInt32/64},
	} {
		if got := DefaultMaxConns(c.nofile); got != c.want {
			t.Errorf("DefaultMaxConns(%d) = %d, want %d", c.nofile, got, c.want)
		}
	}
	// Non-decreasing, within the limit, and keeps at least 256 back once the limit allows it.
	prev := 0
	for n := uint64(0); n < 70000; n++ {
		got := DefaultMaxConns(n)
		if got < prev || uint64(got) > n || got < 0 {
			t.Fatalf("DefaultMaxConns(%d) = %d after %d", n, got, prev)
		}
		if n >= 512 && n-uint64(got) < reservedFDs {
			t.Fatalf("DefaultMaxConns(%d) = %d keeps fewer than %d descriptors", n, got, reservedFDs)
		}
		prev = got
	}
}

func TestRaiseNOFILE(t *testing.T) {
	var orig syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &orig); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &orig) })
	if orig.Max < 128 {
		t.Fatalf("hard RLIMIT_NOFILE %d is too small to run this test", orig.Max)
	}
	// Lower the soft limit (always allowed), then raise it again.
	lowered := syscall.Rlimit{Cur: orig.Max / 2, Max: orig.Max}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lowered); err != nil {
		t.Fatal(err)
	}
	soft, hard, err := RaiseNOFILE()
	if err != nil {
		t.Fatal(err)
	}
	if soft != orig.Max || hard != orig.Max {
		t.Errorf("RaiseNOFILE = %d/%d, want %d/%d", soft, hard, orig.Max, orig.Max)
	}
	var now syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &now); err != nil {
		t.Fatal(err)
	}
	if now.Cur != orig.Max || now.Max != orig.Max {
		t.Errorf("limit in force %d/%d, want %d/%d", now.Cur, now.Max, orig.Max, orig.Max)
	}
	// Already raised: nothing to do, same answer.
	if s, h, err := RaiseNOFILE(); err != nil || s != orig.Max || h != orig.Max {
		t.Errorf("second RaiseNOFILE = %d/%d %v", s, h, err)
	}
}
