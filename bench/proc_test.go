package bench

import (
	"os"
	"testing"
)

func TestParseProcStat(t *testing.T) {
	// Fields from proc(5); the command name holds spaces and parentheses.
	in := "4242 (evil ) (name) S 1 4242 4242 0 -1 4194560 1234 0 0 0 777 333 0 0 20 0 8 0 100 1000000 500 18446744073709551615\n"
	ut, st, err := parseProcStat([]byte(in))
	if err != nil || ut != 777 || st != 333 {
		t.Fatalf("utime %d stime %d err %v, want 777 333", ut, st, err)
	}
	for _, bad := range []string{"", "1 (x) S 1 2 3", "1 (x) S 1 2 3 4 5 6 7 8 9 10 x 12", "1 x S 1 2 3 4 5 6 7 8 9 10 11 12 13"} {
		if _, _, err := parseProcStat([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestParseVmRSS(t *testing.T) {
	in := "Name:\twsgate\nVmPeak:\t  99999 kB\nVmRSS:\t   12345 kB\nRssAnon:\t 1 kB\n"
	if got, err := parseVmRSS([]byte(in)); err != nil || got != 12345*1024 {
		t.Fatalf("got %d %v", got, err)
	}
	for _, bad := range []string{"", "VmRSS:\t12 MB\n", "VmRSS:\tx kB\n", "Name: x\n"} {
		if _, err := parseVmRSS([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

// TestSampleProcSelf reads this test process through /proc.
func TestSampleProcSelf(t *testing.T) {
	s, err := SampleProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.RSS <= 0 || s.CPUTicks < 0 {
		t.Fatalf("implausible sample %+v", s)
	}
	if _, err := SampleProc(-1); err == nil {
		t.Fatal("sampled pid -1")
	}
}

func FuzzParseProcStat(f *testing.F) {
	f.Add([]byte("1 (init) S 0 1 1 0 -1 4194560 1 0 0 0 5 6 0 0 20 0 1 0 1 1 1"))
	f.Add([]byte("1 ((()) S 0 1 1 0 -1 4194560 1 0 0 0 5 6"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ut, st, err := parseProcStat(b)
		if err == nil && (ut < 0 || st < 0) {
			t.Fatalf("negative times %d %d", ut, st)
		}
	})
}

func FuzzParseVmRSS(f *testing.F) {
	f.Add([]byte("VmRSS:\t 100 kB\n"))
	f.Add([]byte("Name: x\nVmRSS: 1 kB"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if v, err := parseVmRSS(b); err == nil && v < 0 {
			t.Fatalf("negative RSS %d", v)
		}
	})
}
