package frame

import (
	"testing"
)

func TestRequestAccessors(t *testing.T) {
	head := []byte("GET ws://h.example:80/sse/x?channel=a&channel=b%2Cc&token=t HTTP/1.1\r\n" +
		"Host: h.example\r\nORIGIN:  https://app.example \r\nX-Multi: 1\r\nx-multi: 2\r\nX-Empty:\r\n\r\n")
	r, f := parseRequest(head)
	if f != failNone {
		t.Fatalf("parse: %v", f)
	}
	req := Request{URI: r.uri, fields: r.fields}
	if got := string(req.Path()); got != "/sse/x" {
		t.Errorf("Path = %q", got)
	}
	if got := string(req.RawQuery()); got != "channel=a&channel=b%2Cc&token=t" {
		t.Errorf("RawQuery = %q", got)
	}
	q, err := req.Query()
	if err != nil || len(q["channel"]) != 2 || q["channel"][1] != "b,c" || q.Get("token") != "t" {
		t.Errorf("Query = %v, %v", q, err)
	}
	if v, ok := req.Header("Origin"); !ok || string(v) != "https://app.example" {
		t.Errorf("Header(Origin) = %q, %v", v, ok)
	}
	if v, ok := req.Header("X-Empty"); !ok || len(v) != 0 {
		t.Errorf("Header(X-Empty) = %q, %v", v, ok)
	}
	if _, ok := req.Header("X-Multi-Not"); ok {
		t.Error("Header found a field that is not there")
	}
	if _, ok := req.Header("Hos"); ok {
		t.Error("Header matched a prefix of a field name")
	}
	var all []string
	req.Headers("x-multi", func(v []byte) bool { all = append(all, string(v)); return true })
	if len(all) != 2 || all[0] != "1" || all[1] != "2" {
		t.Errorf("Headers = %q", all)
	}
	for uri, want := range map[string]string{
		"/": "/", "/a?b": "/a", "ws://h": "/", "ws://h?x=1": "/", "http://h/p/q?x": "/p/q",
	} {
		r := Request{URI: []byte(uri)}
		if got := string(r.Path()); got != want {
			t.Errorf("Path(%q) = %q, want %q", uri, got, want)
		}
	}
}

// TestRequestHeaderNoAlloc: the lookups a check makes on every handshake allocate nothing.
func TestRequestHeaderNoAlloc(t *testing.T) {
	r, _ := parseRequest([]byte("GET /a?b=c HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer x\r\n\r\n"))
	req := Request{URI: r.uri, fields: r.fields}
	n := testing.AllocsPerRun(100, func() {
		if v, ok := req.Header("authorization"); !ok || len(v) != 8 {
			t.Fatal("no header")
		}
		_ = req.Path()
		_ = req.RawQuery()
	})
	if n != 0 {
		t.Fatalf("%v allocations", n)
	}
}
