package pubsub

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestCheckPublishUTF8 covers the client-publish path's validation directly: a text frame never
// carries invalid UTF-8 (the engine fails it with 1007 first), but the check is the same.
func TestCheckPublishUTF8(t *testing.T) {
	if err := checkPublish("a", "", json.RawMessage("\"\xc3\x28\"")); err == nil || !strings.Contains(err.Error(), "UTF-8") {
		t.Fatalf("invalid UTF-8 data: %v", err)
	}
	if err := checkPublish("a", "\xff", json.RawMessage("1")); err != errBadID {
		t.Fatalf("invalid UTF-8 id: %v", err)
	}
	if err := checkPublish("a", "é", json.RawMessage(`"ünïcode ✓"`)); err != nil {
		t.Fatalf("valid UTF-8: %v", err)
	}
}
