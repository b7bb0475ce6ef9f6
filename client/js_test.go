package client_test

import (
	"context"
	"os"
	"os/exec"
	"testing"
)

// TestJSClient runs the browser client's unit tests (js/wsgate.test.js, Node's test runner with
// a fake WebSocket and a fake clock) when node is installed, so that `go test ./client/...`
// covers both clients.
func TestJSClient(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("node is not installed: .ci/run installs Debian's nodejs for this test")
		}
		t.Skip("node is not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*wait)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--test", "wsgate.test.js")
	cmd.Dir = "js"
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test: %v\n%s", err, out)
	}
}
