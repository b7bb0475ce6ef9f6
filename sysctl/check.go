package sysctl

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/bits"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Status values of a Result. A status that is not one of these starts with "error: " and says
// why the key could not be read or written.
const (
	StatusOK      = "ok"      // the host meets the profile for this key
	StatusLow     = "low"     // below a min or ram/UNIT field, a range narrower than wanted, or a port list lacking ports
	StatusHigh    = "high"    // above a max field
	StatusDiffers = "differs" // not the exact value wanted
	StatusMissing = "missing" // the key does not exist on this host; never counts as falling short
	statusError   = "error: "
)

// DefaultRoot is where the kernel exposes sysctls (proc_sys(5)).
const DefaultRoot = "/proc/sys"

// readLimit bounds how much of one sysctl file is read; real values are a few dozen bytes.
const readLimit = 4096

// Result is the comparison of one key with the profile.
type Result struct {
	Key     string
	Current string // live value, fields separated by single spaces; "" when missing or unreadable
	Wanted  string // what the profile asks, per field: ">=N", "<=N", "=N" or "*" (not compared); "incl:LIST" for a port list
	Status  string // StatusOK, StatusLow, StatusHigh, StatusDiffers, StatusMissing or "error: ..."
}

// FallsShort reports whether the key exists and does not meet the profile: what apply changes.
func (r Result) FallsShort() bool {
	return r.Status == StatusLow || r.Status == StatusHigh || r.Status == StatusDiffers
}

// Failed reports whether the key could not be read, parsed or written.
func (r Result) Failed() bool { return strings.HasPrefix(r.Status, statusError) }

// host is the machine a check runs against: the sysctl root and the facts ram/UNIT rules are
// computed from. Production fills it from the running system (liveHost); tests build one by hand
// with a temporary root and a chosen RAM size.
type host struct {
	root     string
	ram      uint64 // physical RAM in bytes; 0 when unknown (ram/UNIT keys then report an error)
	pageSize uint64
	// listen holds the ports this deployment listens on, which every ports rule wants besides
	// its own (`wsgate sysctl -addr ...`); nil for the profile alone (Check, Apply, Persist).
	listen []uint16
}

// liveHost describes the running machine with the given sysctl root.
func liveHost(root string) host {
	h := host{root: root, pageSize: uint64(os.Getpagesize())}
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		h.ram = uint64(si.Totalram) * uint64(si.Unit)
	}
	return h
}

// Check compares the live values under root ("/proc/sys" in production) with the embedded
// profile and returns one Result per profile key, in profile order. Keys that do not exist are
// StatusMissing; keys that cannot be read are "error: ...". The error is non-nil only when root
// itself is unusable. Safe for concurrent use; it only reads.
func Check(root string) ([]Result, error) {
	return liveHost(root).check(parsedProfile())
}

func (h host) check(rules []rule) ([]Result, error) {
	if err := h.checkRoot(); err != nil {
		return nil, err
	}
	out := make([]Result, 0, len(rules))
	for i := range rules {
		out = append(out, h.evaluate(&rules[i]).result)
	}
	return out, nil
}

func (h host) checkRoot() error {
	fi, err := os.Stat(h.root)
	if err != nil {
		return fmt.Errorf("sysctl: root: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("sysctl: root %s is not a directory", h.root)
	}
	return nil
}

// path maps a key that passed checkKey to its file under the root.
func (h host) path(key string) string {
	return filepath.Join(h.root, strings.ReplaceAll(key, ".", "/"))
}

// read returns the fields of key's current value. A key that does not exist yields an error
// matching fs.ErrNotExist.
func (h host) read(key string) ([]string, error) {
	f, err := os.Open(h.path(key))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, readLimit))
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(b)), nil
}

// readUints reads key as unsigned integers. present is false when the key does not exist.
func (h host) readUints(key string) (vals []uint64, present bool, err error) {
	f, err := h.read(key)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, true, err
	}
	vals = make([]uint64, len(f))
	for i, s := range f {
		if vals[i], err = parseUint(s); err != nil {
			return nil, true, fmt.Errorf("%s: %w", key, err)
		}
	}
	if len(vals) == 0 {
		return nil, true, fmt.Errorf("%s: empty value", key)
	}
	return vals, true, nil
}

// write stores value in key's file with one write(2), as the kernel's sysctl handlers expect.
// The file is never created: a key that does not exist stays missing.
func (h host) write(key, value string) error {
	f, err := os.OpenFile(h.path(key), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, err = f.Write([]byte(value + "\n"))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// resolve turns a rule's fields into wanted values for this host; ram/UNIT percentages become
// units of RAM. Fields marked any stay so.
func (h host) resolve(r *rule) ([]field, error) {
	if r.op != opRAM {
		return r.fields, nil
	}
	unit := r.unit
	if unit == 0 {
		unit = h.pageSize
	}
	if h.ram == 0 || unit == 0 {
		return nil, errors.New("size of RAM unknown")
	}
	out := make([]field, len(r.fields))
	for i, f := range r.fields {
		if f.any {
			out[i].any = true
			continue
		}
		out[i].n = ramShare(h.ram, f.n, f.scale, unit)
	}
	return out, nil
}

// ramShare returns ram * (n/scale)% / unit, rounded down, without overflow: the parser
// guarantees 0 < n <= 100*scale, so the high word of ram*n is below the divisor and the
// quotient is at most ram.
func ramShare(ram, n, scale, unit uint64) uint64 {
	hi, lo := bits.Mul64(ram, n)
	div := 100 * scale
	q, _ := bits.Div64(hi, lo, div)
	return q / unit
}

// evaluation is one key compared with its rule. Values are in the syntax sysctl(8) writes:
// decimal fields separated by single spaces, or a port list.
type evaluation struct {
	result Result
	want   string // the complete wanted value; "" when a field is "*" or it could not be resolved
	cur    string // the live value as read and parsed; "" when it was not (missing, unusable)
	next   string // the value apply writes; "" when nothing needs to change (never a real value)
}

// evaluate reads key r.Key under h and compares it with r.
func (h host) evaluate(r *rule) evaluation {
	if r.op == opPorts {
		return h.evaluatePorts(r)
	}
	e := evaluation{result: Result{Key: r.Key, Wanted: r.Value}}
	want, err := h.resolve(r)
	if err != nil {
		e.result.Status = statusError + err.Error()
		return e
	}
	e.result.Wanted = renderWanted(r.op, want)
	if !hasAny(want) {
		v := make([]uint64, len(want))
		for i, w := range want {
			v[i] = w.n
		}
		e.want = formatValue(v)
	}

	f, err := h.read(r.Key)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		e.result.Status = StatusMissing
		return e
	case err != nil:
		e.result.Status = statusError + err.Error()
		return e
	}
	e.result.Current = strings.Join(f, " ")
	if len(f) != len(want) {
		e.result.Status = fmt.Sprintf("%shas %d fields, the profile expects %d", statusError, len(f), len(want))
		return e
	}
	cur := make([]uint64, len(f))
	for i, s := range f {
		if cur[i], err = parseUint(s); err != nil {
			e.result.Status = statusError + err.Error()
			return e
		}
	}
	e.cur = formatValue(cur)
	var next []uint64
	e.result.Status, next = judge(r.op, cur, want)
	if next != nil {
		e.next = formatValue(next)
	}
	return e
}

// evaluatePorts compares a port list with a ports rule: the live list must contain every port
// of the rule and every listen port of h. What apply writes is the union of the live list and
// the wanted one, since a write replaces the whole list: a port the host reserved for something
// else is never dropped.
func (h host) evaluatePorts(r *rule) evaluation {
	want := r.ports.withPorts(h.listen...)
	e := evaluation{result: Result{Key: r.Key, Wanted: "incl:" + want.String()}, want: want.String()}
	f, err := h.read(r.Key)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		e.result.Status = StatusMissing
		return e
	case err != nil:
		e.result.Status = statusError + err.Error()
		return e
	}
	cur, err := parsePortSet(strings.Join(f, ""))
	if err != nil {
		e.result.Current = strings.Join(f, " ")
		e.result.Status = statusError + err.Error()
		return e
	}
	e.result.Current = cur.String()
	e.cur = cur.String()
	if cur.containsAll(want) {
		e.result.Status = StatusOK
		return e
	}
	e.result.Status = StatusLow
	e.next = cur.union(want).String()
	return e
}

// judge compares cur with want under op. It returns the status and, when the key falls short,
// the value apply writes: cur with only the failing fields moved to the wanted value, so a field
// that is already better is kept as it is.
func judge(op opKind, cur []uint64, want []field) (string, []uint64) {
	next := slices.Clone(cur)
	short := false
	set := func(i int, v uint64) { next[i], short = v, true }
	status := StatusLow
	switch op {
	case opMin, opRAM:
		for i, w := range want {
			if !w.any && cur[i] < w.n {
				set(i, w.n)
			}
		}
	case opMax:
		status = StatusHigh
		for i, w := range want {
			if !w.any && cur[i] > w.n {
				set(i, w.n)
			}
		}
	case opRange: // wider is better: lower the low end, raise the high end, never narrow
		if cur[0] > want[0].n {
			set(0, want[0].n)
		}
		if cur[1] < want[1].n {
			set(1, want[1].n)
		}
	case opExact:
		status = StatusDiffers
		for i, w := range want {
			if cur[i] != w.n {
				set(i, w.n)
			}
		}
	default:
		panic("BUG: sysctl: unknown comparison kind " + strconv.Itoa(int(op)))
	}
	if !short {
		return StatusOK, nil
	}
	return status, next
}

// renderWanted shows a resolved wanted value field by field: ">=N" for min and ram/UNIT, "<=N"
// for max, "<=LOW >=HIGH" for a range, "=N" for exact, "*" where nothing is compared. (A ports
// rule shows "incl:LIST", see evaluatePorts.)
func renderWanted(op opKind, want []field) string {
	var b strings.Builder
	for i, w := range want {
		if i > 0 {
			b.WriteByte(' ')
		}
		if w.any {
			b.WriteByte('*')
			continue
		}
		switch {
		case op == opMin, op == opRAM, op == opRange && i == 1:
			b.WriteString(">=")
		case op == opMax, op == opRange && i == 0:
			b.WriteString("<=")
		default:
			b.WriteByte('=')
		}
		b.WriteString(strconv.FormatUint(w.n, 10))
	}
	return b.String()
}

// formatValue renders fields the way sysctl(8) accepts them: decimal, separated by spaces.
func formatValue(v []uint64) string {
	var b strings.Builder
	for i, n := range v {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.FormatUint(n, 10))
	}
	return b.String()
}
