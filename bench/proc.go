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
// memory from VmRSS in /proc/PID/status, and the kernel's TCP socket memory
// from the "mem" column (pages) of the TCP line in /proc/net/sockstat.

// userHZ is the unit of utime/stime. proc(5) gives them in clock ticks,
// sysconf(_SC_CLK_TCK), which the Linux ABI fixes at USER_HZ = 100 on every
// architecture Go supports.
const userHZ = 100

// ProcSample is one reading of a process and of kernel socket memory.
type ProcSample struct {
	CPUTicks int64 `json:"cpu_ticks"`     // utime + stime
	RSS      int64 `json:"rss_bytes"`     // VmRSS
	SockMem  int64 `json:"sockmem_bytes"` // TCP mem pages * page size, all sockets on the host
	TCPInUse int64 `json:"tcp_inuse"`     // TCP sockets in use on the host
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
	if b, err = os.ReadFile("/proc/net/sockstat"); err == nil {
		var pages int64
		if s.TCPInUse, pages, err = parseSockstat(b); err == nil {
			s.SockMem = pages * int64(os.Getpagesize())
		}
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

// parseSockstat returns the in-use count and memory pages of the TCP line of
// /proc/net/sockstat ("TCP: inuse 5 orphan 0 tw 0 alloc 7 mem 1").
func parseSockstat(b []byte) (inuse, memPages int64, err error) {
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte("\n"))
		rest, ok := bytes.CutPrefix(line, []byte("TCP:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		var haveUse, haveMem bool
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseInt(string(f[i+1]), 10, 64)
			if err != nil || v < 0 {
				return 0, 0, errProcFormat
			}
			switch string(f[i]) {
			case "inuse":
				inuse, haveUse = v, true
			case "mem":
				memPages, haveMem = v, true
			}
		}
		if !haveUse || !haveMem {
			return 0, 0, errProcFormat
		}
		return inuse, memPages, nil
	}
	return 0, 0, errProcFormat
}
