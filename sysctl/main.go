package sysctl

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"syscall"
	"text/tabwriter"
)

// Exit codes of Main.
const (
	ExitOK    = 0 // everything meets the profile (missing keys do not count)
	ExitShort = 1 // something falls short (check, apply -dry-run, or a value the kernel refused)
	ExitError = 2 // usage error, unreadable key, failed write, not root
)

const usage = `usage: wsgate sysctl show
       wsgate sysctl check [-root DIR] [-addr ADDR] [-admin-addr ADDR]
       wsgate sysctl apply [-root DIR] [-addr ADDR] [-admin-addr ADDR] [-dry-run] [-persist[=FILE]]

show    print the bundled kernel profile (million.conf) with the reason for every setting
check   compare this host with the profile and print key, current, wanted, status;
        also this process's RLIMIT_NOFILE against what a million connections need,
        and warn about a listen port inside the ephemeral port range that is not reserved
apply   raise what falls short (root only unless -dry-run) and print each change;
        never lowers a value that is already better than the profile
        -persist also writes the result to a sysctl.d file applied at every boot

-addr and -admin-addr are the server's listen addresses (default: WSGATE_ADDR and
WSGATE_ADMIN_ADDR from the environment, as the server reads them, else the server's
defaults 127.0.0.1:8080 and 127.0.0.1:9090); their ports are added to the ports that
net.ipv4.ip_local_reserved_ports must contain. An empty -admin-addr means no admin listener.

exit status: 0 the host meets the profile (missing keys, such as conntrack without
its module, do not count); 1 something falls short; 2 usage error, a key that
cannot be read or written, or apply without root.

flags:
`

// mainEnv is what Main learns from the process; tests substitute it.
type mainEnv struct {
	host      func(root string) host
	euid      int
	soft      uint64 // RLIMIT_NOFILE
	hard      uint64
	nofileErr error
	getenv    func(key string) string // nil: an empty environment
}

func liveEnv() mainEnv {
	e := mainEnv{host: liveHost, euid: os.Geteuid(), getenv: os.Getenv}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		e.nofileErr = err
	} else {
		e.soft, e.hard = lim.Cur, lim.Max
	}
	return e
}

// Main runs `wsgate sysctl ARGS...` (args exclude "wsgate sysctl") and returns the exit status,
// one of ExitOK, ExitShort or ExitError. Flags may come before or after the subcommand:
//
//	-root DIR        sysctl root (default /proc/sys)
//	-addr ADDR       the server's WebSocket listen address (default $WSGATE_ADDR, else
//	                 DefaultAddr) and -admin-addr ADDR its admin address (default
//	                 $WSGATE_ADMIN_ADDR, else DefaultAdminAddr): check and apply want their
//	                 ports in net.ipv4.ip_local_reserved_ports besides the profile's, and check
//	                 warns about one inside the ephemeral range that is not reserved
//	-dry-run         apply: print what would change, write nothing
//	-persist[=FILE]  apply: also write the profile for reboots (default
//	                 /etc/sysctl.d/90-wsgate.conf); see PersistFrom
//
// apply without -dry-run refuses to run unless the effective user ID is 0. cmd/wsgate calls it
// from the main goroutine; it writes only to stdout and stderr (and, for apply, the root and the
// -persist file).
func Main(args []string, stdout, stderr io.Writer) int {
	return run(args, stdout, stderr, liveEnv())
}

// persistFlag is -persist: a flag usable alone (-persist, the default path) or with a value
// (-persist=FILE). flag.Value with IsBoolFlag lets the flag package accept both forms.
type persistFlag struct{ path string }

func (p *persistFlag) String() string   { return p.path }
func (p *persistFlag) IsBoolFlag() bool { return true }
func (p *persistFlag) Set(s string) error {
	switch s {
	case "true":
		p.path = DefaultPersistPath
	case "false":
		p.path = ""
	case "":
		return errors.New("empty path")
	default:
		p.path = s
	}
	return nil
}

func run(args []string, stdout, stderr io.Writer, env mainEnv) int {
	fs := flag.NewFlagSet("wsgate sysctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	root := fs.String("root", DefaultRoot, "sysctl `DIR` to read and write")
	getenv := env.getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	addr := fs.String("addr", cmp.Or(getenv(envAddr), DefaultAddr),
		"the server's WebSocket listen `ADDR`, taken from $"+envAddr+" when set")
	adminAddr := fs.String("admin-addr", cmp.Or(getenv(envAdminAddr), DefaultAdminAddr),
		"the server's admin listen `ADDR`, taken from $"+envAdminAddr+" when set; empty for none")
	dryRun := fs.Bool("dry-run", false, "apply: print what would change, write nothing")
	var persist persistFlag
	fs.Var(&persist, "persist", "apply: also write the profile for reboots, to "+DefaultPersistPath+
		" or to the file given as -persist=FILE")

	// Parse twice so that flags may come before and after the subcommand.
	if err := fs.Parse(args); err != nil {
		return parseFailure(err)
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "wsgate sysctl: missing subcommand (show, check or apply)")
		fs.Usage()
		return ExitError
	}
	sub := fs.Arg(0)
	if err := fs.Parse(fs.Args()[1:]); err != nil {
		return parseFailure(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "wsgate sysctl %s: unexpected argument %q\n", sub, fs.Arg(0))
		return ExitError
	}
	set := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	switch sub {
	case "show":
		if len(set) > 0 {
			fmt.Fprintln(stderr, "wsgate sysctl show: takes no flags")
			return ExitError
		}
		fmt.Fprint(stdout, ProfileText())
		return ExitOK
	case "check":
		if set["dry-run"] || set["persist"] {
			fmt.Fprintln(stderr, "wsgate sysctl check: -dry-run and -persist belong to apply")
			return ExitError
		}
	case "apply":
		if !*dryRun && env.euid != 0 {
			fmt.Fprintf(stderr, "wsgate sysctl apply: writing %s needs root (running as uid %d); "+
				"run it with sudo, or add -dry-run to see what would change\n", *root, env.euid)
			return ExitError
		}
	default:
		fmt.Fprintf(stderr, "wsgate sysctl: unknown subcommand %q (show, check or apply)\n", sub)
		fs.Usage()
		return ExitError
	}
	listeners := []Listener{
		listener("addr", envAddr, *addr, set, getenv),
		listener("admin-addr", envAdminAddr, *adminAddr, set, getenv),
	}
	h := env.host(*root)
	for _, l := range listeners {
		p, ok, err := l.listenPort()
		if err != nil {
			fmt.Fprintf(stderr, "wsgate sysctl %s: %v\n", sub, err)
			return ExitError
		}
		if ok {
			h.listen = append(h.listen, p)
		}
	}
	if sub == "check" {
		return runCheck(env, h, listeners, stdout, stderr)
	}
	return runApply(h, *dryRun, persist.path, stdout, stderr)
}

// Environment variables the server reads its listen addresses from (cmd/wsgate: WSGATE_<FLAG>).
const (
	envAddr      = "WSGATE_ADDR"
	envAdminAddr = "WSGATE_ADMIN_ADDR"
)

// listener names the address of flag -name for messages by where it came from: the command
// line, the environment variable env, or the server's default.
func listener(name, env, addr string, set map[string]bool, getenv func(string) string) Listener {
	switch {
	case set[name]:
		return Listener{Name: "-" + name, Addr: addr}
	case getenv(env) != "":
		return Listener{Name: env, Addr: addr}
	}
	return Listener{Name: "default -" + name, Addr: addr}
}

// parseFailure is the exit status after a flag parse error, which the flag package has already
// reported with the usage: -h and -help succeed, anything else is a usage error.
func parseFailure(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	return ExitError
}

func runCheck(env mainEnv, h host, listeners []Listener, stdout, stderr io.Writer) int {
	results, err := h.check(parsedProfile())
	if err != nil {
		fmt.Fprintf(stderr, "wsgate sysctl check: %v\n", err)
		return ExitError
	}
	nofile := Result{Key: "RLIMIT_NOFILE", Wanted: fmt.Sprintf("hard>=%d", WantNOFILE)}
	switch {
	case env.nofileErr != nil:
		nofile.Status = statusError + env.nofileErr.Error()
	default:
		nofile.Current = fmt.Sprintf("soft=%d hard=%d", env.soft, env.hard)
		nofile.Status = StatusOK
		if env.hard < WantNOFILE {
			nofile.Status = StatusLow
		}
	}
	rows := append(results, nofile)
	printTable(stdout, rows)
	code := summarize(stdout, rows)
	if nofile.Status == StatusLow {
		fmt.Fprintf(stdout, "RLIMIT_NOFILE is this process's limit, not the host's: give the service "+
			"LimitNOFILE=%d (docs/wsgate.service), which fs.nr_open must allow; wsgate raises its soft limit "+
			"to the hard one at start-up. To check under the same limit: ulimit -n %d; wsgate sysctl check\n",
			WantNOFILE, WantNOFILE)
	}
	for _, w := range h.listenPortWarnings(listeners) {
		fmt.Fprintf(stdout, "\nwarning: %s\n", w)
	}
	return code
}

func runApply(h host, dryRun bool, persistPath string, stdout, stderr io.Writer) int {
	changes, results, err := h.apply(parsedProfile(), dryRun)
	if results == nil && err != nil {
		fmt.Fprintf(stderr, "wsgate sysctl apply: %v\n", err)
		return ExitError
	}
	verb := "set"
	if dryRun {
		verb = "would set"
	}
	for _, c := range changes {
		fmt.Fprintf(stdout, "%s %s: %s -> %s\n", verb, c.Key, c.From, c.To)
	}
	if len(changes) == 0 {
		fmt.Fprintln(stdout, "nothing to change")
	}
	fmt.Fprintln(stdout)
	printTable(stdout, results)
	code := summarize(stdout, results)
	if dryRun {
		fmt.Fprintln(stdout, "dry run: nothing was written")
	}
	if err != nil {
		fmt.Fprintf(stderr, "wsgate sysctl apply: %v\n", err)
		code = ExitError
	}
	if persistPath != "" {
		text, perr := h.persistText(parsedProfile(), persistPath)
		if perr == nil && dryRun {
			fmt.Fprintf(stdout, "\nwould write %s:\n%s", persistPath, text)
			return code
		}
		if perr == nil {
			perr = writeFileAtomic(persistPath, []byte(text))
		}
		if perr != nil {
			fmt.Fprintf(stderr, "wsgate sysctl apply: %v\n", perr)
			return ExitError
		}
		fmt.Fprintf(stdout, "wrote %s (applied at every boot by systemd-sysctl or sysctl --system)\n", persistPath)
	}
	return code
}

// printTable writes rows as aligned columns under a KEY CURRENT WANTED STATUS header.
func printTable(w io.Writer, rows []Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tCURRENT\tWANTED\tSTATUS")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Key, dash(r.Current), dash(r.Wanted), r.Status)
	}
	tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// summarize prints one line of counts and returns the exit status the rows call for: an error
// outranks falling short, and missing keys count for nothing.
func summarize(w io.Writer, rows []Result) int {
	var ok, short, missing, failed int
	for _, r := range rows {
		switch {
		case r.Status == StatusOK:
			ok++
		case r.Status == StatusMissing:
			missing++
		case r.FallsShort():
			short++
		default:
			failed++
		}
	}
	fmt.Fprintf(w, "\n%d ok, %d falling short, %d missing on this host, %d errors\n", ok, short, missing, failed)
	if missing > 0 {
		fmt.Fprintln(w, "missing: the key does not exist here (for nf_conntrack_max: the module is not loaded); nothing to do")
	}
	switch {
	case failed > 0:
		return ExitError
	case short > 0:
		return ExitShort
	}
	return ExitOK
}
