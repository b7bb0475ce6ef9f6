package bench

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

func TestReasonKey(t *testing.T) {
	for _, tc := range []struct {
		ev   CloseEvent
		want string
	}{
		{CloseEvent{Reason: ReasonRefused, Err: errors.New("ignored")}, ReasonRefused},
		{CloseEvent{Reason: ReasonHTTPStatus, Status: 503}, "http_503"},
		{CloseEvent{Reason: ReasonServerClose, Status: 1001}, "server_close_1001"},
		{CloseEvent{Reason: ReasonServerClose, Status: 1008, Text: "slow consumer"}, "server_close_1008 slow consumer"},
		{CloseEvent{Reason: ReasonProtocol, Err: errors.New("masked server frame")}, "protocol_error masked server frame"},
		{CloseEvent{Reason: ReasonOtherErrno}, ReasonOtherErrno},
	} {
		if got := reasonKey(tc.ev); got != tc.want {
			t.Errorf("reasonKey(%+v) = %q, want %q", tc.ev, got, tc.want)
		}
	}
	long := reasonKey(CloseEvent{Reason: ReasonServerClose, Status: 1000, Text: strings.Repeat("é", 100)})
	if len(long) > len("server_close_1000 ")+maxDetail+len("…") || !strings.HasSuffix(long, "é…") {
		t.Errorf("long detail not cut on a rune boundary: %q", long)
	}
}

func TestDescribeReason(t *testing.T) {
	for key, want := range map[string]string{
		ReasonReset:                         "connection reset",
		ReasonEOF:                           "server closed TCP without a close frame",
		"http_403":                          "HTTP 403 answer to the upgrade request",
		"server_close_1008 slow consumer":   "server close 1008 (policy violation) 'slow consumer'",
		"server_close_4000":                 "server close 4000",
		"protocol_error masked frame":       "protocol violation: masked frame",
		"error 403: publishing is disabled": "error 403: publishing is disabled",
	} {
		if got := describeReason(key); got != want {
			t.Errorf("describeReason(%q) = %q, want %q", key, got, want)
		}
	}
	got := describeCounts(map[string]int64{ReasonEOF: 2, ReasonReset: 5, ReasonRefused: 2})
	if want := "connection reset: 5; server closed TCP without a close frame: 2; connection refused: 2"; got != want { // ties in key order
		t.Errorf("describeCounts = %q, want %q", got, want)
	}
}

// TestCountReasonIsBounded: details from the server cannot grow a reason
// map without bound; past the cap they are counted under their base key.
func TestCountReasonIsBounded(t *testing.T) {
	var m map[string]int64
	for i := range 100 {
		countReason(&m, "server_close_1008 conn "+strconv.Itoa(i))
	}
	countReason(&m, "server_close_1008 conn 0")
	if len(m) != maxReasonKeys+1 {
		t.Fatalf("%d keys, want %d distinct plus the base", len(m), maxReasonKeys)
	}
	eq(t, "base key", m["server_close_1008"], int64(100-maxReasonKeys))
	eq(t, "known key", m["server_close_1008 conn 0"], 2)
}

func TestCloseText(t *testing.T) {
	for _, tc := range []struct {
		payload []byte
		want    string
	}{
		{nil, ""},
		{[]byte{3, 232}, ""},
		{append([]byte{3, 240}, "slow consumer"...), "slow consumer"},
		{append([]byte{3, 240}, "a\nb\x00c"...), "a?b?c"},
		{append([]byte{3, 240}, 'x', 0xff, 'y'), "x\uFFFDy"},
	} {
		if got := closeText(tc.payload); got != tc.want {
			t.Errorf("closeText(%q) = %q, want %q", tc.payload, got, tc.want)
		}
	}
}

func TestBodyText(t *testing.T) {
	for body, want := range map[string]string{
		`{"error":"missing or wrong API key"}`: "missing or wrong API key",
		"unauthorized\n":                       "unauthorized",
		"  a\n\tb  ":                           "a b",
		"":                                     "(empty body)",
	} {
		if got := bodyText([]byte(body)); got != want {
			t.Errorf("bodyText(%q) = %q, want %q", body, got, want)
		}
	}
}

// TestUnusable: a run that could not do its job names why; a run that did
// is not unusable, however imperfect.
func TestUnusable(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    Result
		want string // "" for usable
	}{
		{"nothing opened", Result{Scenario: ScenarioConnect, Conns: 5, Failures: map[string]int64{"http_503": 5}},
			"no connection opened: HTTP 503 answer to the upgrade request: 5"},
		{"connect worked", Result{Scenario: ScenarioConnect, Conns: 5, Opened: 1, Failed: 4}, ""},
		{"no echo", Result{Scenario: ScenarioEcho, Opened: 3, Echo: &EchoCounts{Sent: 3}, Drops: map[string]int64{ReasonEOF: 3}},
			"no echo came back (3 sent): server closed TCP without a close frame: 3"},
		{"echo worked", Result{Scenario: ScenarioEcho, Opened: 3, Echo: &EchoCounts{Sent: 3, Received: 1, Lost: 2}}, ""},
		{"no publish accepted", Result{Scenario: ScenarioPubSub, Opened: 2, PubSub: &PubSubCounts{Subscribed: 2, Published: 10, PublishErrors: 4,
			PublishErrorReasons: map[string]int64{"error 403: publishing from clients is disabled": 4}}},
			"no publish was accepted (10 sent, 4 errors, 0 duplicates, 6 unanswered): error 403: publishing from clients is disabled: 4"},
		{"nothing published", Result{Scenario: ScenarioPubSub, Opened: 2, PubSub: &PubSubCounts{Subscribed: 2}}, "nothing was published"},
		{"no subscription", Result{Scenario: ScenarioPubSub, Opened: 2, PubSub: &PubSubCounts{Published: 5, PublishAcked: 5, SubscribeErrors: 2,
			ErrorReasons: map[string]int64{"error 400: bad channel": 2}}},
			"no subscription was acknowledged: error 400: bad channel: 2"},
		{"nothing delivered", Result{Scenario: ScenarioPubSub, Opened: 2, PubSub: &PubSubCounts{Subscribed: 2, Published: 5, PublishAcked: 5}},
			"no message reached a subscriber (5 publishes accepted)"},
		{"pubsub worked", Result{Scenario: ScenarioPubSub, Opened: 2, PubSub: &PubSubCounts{Subscribed: 1, Published: 5, PublishAcked: 1, PublishErrors: 4, Delivered: 1}}, ""},
		{"no reconnect", Result{Scenario: ScenarioChurn, Opened: 2, Churn: &ChurnCounts{Connects: 2}, Failures: map[string]int64{ReasonRefused: 7}},
			"no connection reconnected: connection refused: 7"},
		{"churn worked", Result{Scenario: ScenarioChurn, Opened: 3, Churn: &ChurnCounts{Connects: 3, Reconnects: 1}}, ""},
	} {
		got := strings.Join(Unusable(&tc.r), "; ")
		if got != tc.want {
			t.Errorf("%s: Unusable = %q, want %q", tc.name, got, tc.want)
		}
	}
}
