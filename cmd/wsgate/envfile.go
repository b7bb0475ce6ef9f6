package main

import (
	"fmt"
	"os"
	"strings"
)

// -env-file: settings read from a file at every start, so that a reload (SIGHUP) applies what
// the file says now. A service manager's environment is fixed for the life of the first
// process; the file is not.

// parseEnvFile parses KEY=VALUE lines: blank lines and lines starting with # or ; are skipped,
// an optional "export " prefix is allowed, whitespace around key and value is dropped, and a value
// in matching single or double quotes loses them (no escapes). Keys are shell variable names.
// The error names the first bad line.
func parseEnvFile(b []byte) (map[string]string, error) {
	vars := map[string]string{}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || !validEnvKey(k) {
			return nil, fmt.Errorf("line %d: want KEY=VALUE, got %q", i+1, line)
		}
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		vars[k] = v
	}
	return vars, nil
}

func validEnvKey(k string) bool {
	if k == "" || k[0] >= '0' && k[0] <= '9' {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// envFileArg finds -env-file's value on the command line (before the flags are parsed, since the
// file's settings go below the command line's).
func envFileArg(args []string) string {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return ""
		}
		name := strings.TrimLeft(a, "-")
		if v, ok := strings.CutPrefix(name, "env-file="); ok {
			return v
		}
		if name == "env-file" && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// withEnvFile returns getenv with the variables of the -env-file (named on the command line or
// by WSGATE_ENV_FILE) laid over it.
func withEnvFile(args []string, getenv func(string) string) (func(string) string, error) {
	path := envFileArg(args)
	if path == "" {
		path = getenv(envName("env-file"))
	}
	if path == "" {
		return getenv, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("-env-file: %w", err)
	}
	vars, err := parseEnvFile(b)
	if err != nil {
		return nil, fmt.Errorf("-env-file %s: %w", path, err)
	}
	return func(k string) string {
		if v, ok := vars[k]; ok {
			return v
		}
		return getenv(k)
	}, nil
}
