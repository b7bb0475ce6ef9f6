package bench

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
)

// The server's resource use is read from procfs (proc(5)): CPU from
// /proc/PID/stat fields 14 and 15 (utime, stime, in clock ticks), resident
// memory from VmRSS in /proc/PID/status. Host-wide figures such as the TCP
// memory of /proc/net/sockstat are not used: on a shared machine other
// processes move them, so a difference says nothing about the server (it
// even goes negative).

// userHZ is the unit of utime/stime. proc(5) gives them in clock ticks,
// sysconf(_SC_CLK_TCK), which the Linux ABI fixes at USER_HZ = 100 on every
// architecture Go supports.
const userHZ = 100

// ProcSample is one reading of a process. Zero values mean it was not
// sampled. It is a value, owned by whoever holds the copy.
type ProcSample struct {
	CPUTicks int64 `json:"cpu_ticks"` // utime + stime
	RSS      int64 `json:"rss_bytes"` // VmRSS
}

// SampleProc reads /proc for pid.
func SampleProc(pid int) (ProcSample, error) {
	var s ProcSample
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	ut, st, err := parseProcStat(b)
	if err != nil {
		return s, err
	}
	s.CPUTicks = ut + st
	b, err = os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	if s.RSS, err = parseVmRSS(b); err != nil {
		return s, err
	}
	return s, nil
}

var errProcFormat = errors.New("unexpected /proc format")

// parseProcStat returns utime and stime from the contents of /proc/PID/stat.
// The command name (field 2) is in parentheses and may itself contain spaces
// and parentheses, so fields are counted from the last ')'.
func parseProcStat(b []byte) (utime, stime int64, err error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, errProcFormat
	}
	// After ")" come fields 3 (state) onwards; utime is field 14.
	fields := bytes.Fields(b[i+1:])
	if len(fields) < 13 {
		return 0, 0, errProcFormat
	}
	if utime, err = strconv.ParseInt(string(fields[11]), 10, 64); err != nil || utime < 0 {
		return 0, 0, errProcFormat
	}
	if stime, err = strconv.ParseInt(string(fields[12]), 10, 64); err != nil || stime < 0 {
		return 0, 0, errProcFormat
	}
	return utime, stime, nil
}

// parseVmRSS returns VmRSS in bytes from the contents of /proc/PID/status
// ("VmRSS:\t   1234 kB").
func parseVmRSS(b []byte) (int64, error) {
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte("\n"))
		rest, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || !bytes.Equal(f[1], []byte("kB")) {
			return 0, errProcFormat
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil || kb < 0 || kb > 1<<40 {
			return 0, errProcFormat
		}
		return kb << 10, nil
	}
	return 0, errProcFormat
}
