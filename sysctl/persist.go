package sysctl

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// DefaultPersistPath is where `wsgate sysctl apply -persist` writes the profile for reboots. The
// 90- prefix orders it after distribution defaults (sysctl.d(5) applies files in lexical order,
// later assignments win).
const DefaultPersistPath = "/etc/sysctl.d/90-wsgate.conf"

// Persist writes the profile as a sysctl.d(5) file at path, with values taken from the live host
// (/proc/sys). See PersistFrom.
func Persist(path string) error { return PersistFrom(DefaultRoot, path) }

// PersistFrom writes the profile as a sysctl.d(5) file at path, "key = value" per line, so that
// systemd-sysctl (or `sysctl --system`) restores it at boot. What is written for each key:
//   - a key that exists under root: the value Apply leaves behind, that is the current value
//     with only the fields that fall short moved to the profile's. A value already better than
//     the profile is written as it is, so the file does not lower this host at the next boot.
//     Both ram/UNIT values and kernel defaults that scale with RAM (fs.file-max,
//     fs.epoll.max_user_watches) are frozen at what they are now: after resizing the host,
//     rerun it. (Running `wsgate sysctl apply` at every start instead, as docs/wsgate.service
//     shows, has no such caveat.)
//   - a key that does not exist (module not loaded): the profile's value with a leading "-",
//     which systemd-sysctl and procps sysctl (3.3.16 and later) read as "ignore a failure to
//     set this", so a boot without the module stays quiet and a boot with it gets the value.
//     A missing key with "*" fields has no complete value to write and is left as a comment.
//
// A key that cannot be read makes PersistFrom fail without writing anything. The file is written
// to a temporary file in the same directory and renamed over path, mode 0644, so a reader never
// sees half of it. The directory must exist.
func PersistFrom(root, path string) error {
	text, err := liveHost(root).persistText(parsedProfile(), path)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, []byte(text))
}

// persistText renders the sysctl.d file PersistFrom writes; path only appears in its header.
func (h host) persistText(rules []rule, path string) (string, error) {
	if err := h.checkRoot(); err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# %s: written by `wsgate sysctl apply -persist`; rerun it rather than edit by hand.\n", path)
	b.WriteString("# The wsgate profile merged with this host as it was when written: a value already\n")
	b.WriteString("# better than the profile was kept. Why each key is here: `wsgate sysctl show`, docs/tuning.md.\n")
	if h.ram != 0 {
		fmt.Fprintf(&b, "# Computed for %.1f GiB of RAM, like the kernel defaults that scale with it: rerun after resizing.\n",
			float64(h.ram)/(1<<30))
	}
	b.WriteString("# A leading \"-\" marks a key absent when written (module not loaded): not an error at boot.\n\n")
	for i := range rules {
		r := &rules[i]
		e := h.evaluate(r)
		switch {
		case e.result.Status == StatusMissing:
			if e.want == "" {
				fmt.Fprintf(&b, "# %s: absent when written, and the profile leaves some of its fields to the host.\n", r.Key)
				continue
			}
			fmt.Fprintf(&b, "-%s = %s\n", r.Key, e.want)
		case e.result.Failed():
			return "", fmt.Errorf("sysctl: persist %s: %s", r.Key, strings.TrimPrefix(e.result.Status, statusError))
		case e.next != "":
			fmt.Fprintf(&b, "%s = %s\n", r.Key, e.next)
		default:
			fmt.Fprintf(&b, "%s = %s\n", r.Key, e.cur)
		}
	}
	return b.String(), nil
}

func hasAny(fs []field) bool {
	for _, f := range fs {
		if f.any {
			return true
		}
	}
	return false
}

// writeFileAtomic replaces path with data: temporary file in the same directory, fsync, rename,
// fsync of the directory (best effort). The temporary name starts with "." and does not end in ".conf", so
// sysctl.d readers never pick it up.
func writeFileAtomic(path string, data []byte) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return fmt.Errorf("sysctl: persist: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		return fmt.Errorf("sysctl: persist %s: %w", path, err)
	}
	// Best effort: the file is complete either way; this only makes the rename itself durable.
	if d, derr := os.Open(dir); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
