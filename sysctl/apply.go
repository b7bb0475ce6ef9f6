package sysctl

import (
	"errors"
	"fmt"
)

// Change is one value apply wrote (or, in a dry run, would write).
type Change struct {
	Key  string
	From string // value before, fields separated by single spaces
	To   string // value written
}

// Apply writes, under root ("/proc/sys" in production), every key of the embedded profile that
// falls short, changing only the fields that fall short (see judge): nothing is ever lowered
// below a min, raised above a max, or narrowed. Missing keys are left alone and reported as
// StatusMissing.
//
// It returns the changes made and one Result per profile key: with dryRun, nothing is written,
// the changes are those that would be made and the results describe the host as it is; without,
// the results are read back after writing, so a value the kernel refused or clamped shows up as
// still falling short. The error joins every failed write (those keys are also "error: ..."
// results); it is also non-nil when root itself is unusable. Writing /proc/sys needs root
// (CAP_SYS_ADMIN, CAP_NET_ADMIN for net.*); Apply itself does not check who runs it.
//
// Apply writes process-wide kernel state: call it from one goroutine at a time.
func Apply(root string, dryRun bool) ([]Change, []Result, error) {
	return liveHost(root).apply(parsedProfile(), dryRun)
}

func (h host) apply(rules []rule, dryRun bool) ([]Change, []Result, error) {
	if err := h.checkRoot(); err != nil {
		return nil, nil, err
	}
	var (
		changes []Change
		errs    []error
	)
	results := make([]Result, 0, len(rules))
	for i := range rules {
		r := &rules[i]
		e := h.evaluate(r)
		if e.next == "" {
			results = append(results, e.result)
			continue
		}
		c := Change{Key: r.Key, From: e.result.Current, To: e.next}
		if dryRun {
			changes = append(changes, c)
			results = append(results, e.result)
			continue
		}
		if err := h.write(r.Key, c.To); err != nil {
			errs = append(errs, fmt.Errorf("sysctl: set %s to %q: %w", r.Key, c.To, err))
			e.result.Status = statusError + "write: " + err.Error()
			results = append(results, e.result)
			continue
		}
		changes = append(changes, c)
		results = append(results, h.evaluate(r).result)
	}
	return changes, results, errors.Join(errs...)
}
