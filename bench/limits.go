package bench

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// checkFDs fails when n sockets cannot fit under this process's open-files
// limit (getrlimit(2) RLIMIT_NOFILE; Go raises the soft limit to the hard
// one at start-up).
func checkFDs(n int) error {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return nil
	}
	if uint64(n)+256 > rl.Cur {
		return fmt.Errorf("%d connections do not fit under this process's open-files limit (%d); use more -procs", n, rl.Cur)
	}
	return nil
}

// portRange reads /proc/sys/net/ipv4/ip_local_port_range.
func portRange() (lo, hi int, err error) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0, err
	}
	_, err = fmt.Sscan(string(b), &lo, &hi)
	return lo, hi, err
}
