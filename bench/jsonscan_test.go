package bench

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseServerMsg(t *testing.T) {
	cases := []struct {
		name string
		in   string
		ok   bool
		want serverMsg
	}{
		{name: "message", in: `{"op":"message","channel":"news","seq":42,"id":"a-1","data":{"t":1700000000000000000,"n":7}}`, ok: true,
			want: serverMsg{op: []byte("message"), channel: []byte("news"), id: []byte("a-1"), seq: 42, hasSeq: true, stamp: 1700000000000000000, hasTime: true}},
		{name: "reordered and spaced", in: " { \"data\" : { \"n\" : [1,{\"t\":2}], \"t\" : -5 } , \"seq\":0, \"op\" : \"message\" } ", ok: true,
			want: serverMsg{op: []byte("message"), seq: 0, hasSeq: true, stamp: -5, hasTime: true}},
		{name: "subscribed", in: `{"op":"subscribed","channel":"c-1","seq":9}`, ok: true,
			want: serverMsg{op: []byte("subscribed"), channel: []byte("c-1"), seq: 9, hasSeq: true}},
		{name: "error", in: `{"op":"error","code":403,"reason":"no \"access\""}`, ok: true,
			want: serverMsg{op: []byte("error"), code: 403, reason: []byte(`no \"access\"`)}},
		{name: "data not an object", in: `{"op":"message","seq":1,"data":"hello"}`, ok: true,
			want: serverMsg{op: []byte("message"), seq: 1, hasSeq: true}},
		{name: "unknown members", in: `{"x":[true,false,null,1.5e3,-0.25],"op":"published","y":{}}`, ok: true,
			want: serverMsg{op: []byte("published")}},
		{name: "no op", in: `{"seq":1}`},
		{name: "seq not integer", in: `{"op":"message","seq":1.5}`},
		{name: "seq string", in: `{"op":"message","seq":"1"}`},
		{name: "op not string", in: `{"op":1}`},
		{name: "trailing garbage", in: `{"op":"x"} x`},
		{name: "trailing comma", in: `{"op":"x",}`},
		{name: "missing colon", in: `{"op" "x"}`},
		{name: "unterminated", in: `{"op":"x"`},
		{name: "bad escape", in: `{"op":"\x"}`},
		{name: "control char", in: "{\"op\":\"a\nb\"}"},
		{name: "leading zero", in: `{"op":"x","n":01}`},
		{name: "array", in: `["op"]`},
		{name: "empty", in: ``},
	}
	for _, c := range cases {
		var m serverMsg
		err := parseServerMsg([]byte(c.in), &m)
		if (err == nil) != c.ok {
			t.Errorf("%s: err %v, want ok=%v", c.name, err, c.ok)
			continue
		}
		if !c.ok {
			continue
		}
		if string(m.op) != string(c.want.op) || string(m.channel) != string(c.want.channel) || string(m.id) != string(c.want.id) ||
			m.seq != c.want.seq || m.hasSeq != c.want.hasSeq || m.stamp != c.want.stamp || m.hasTime != c.want.hasTime ||
			m.code != c.want.code || string(m.reason) != string(c.want.reason) {
			t.Errorf("%s: got %+v", c.name, m)
		}
	}
}

func TestObjScannerDepthBound(t *testing.T) {
	ok := `{"a":` + strings.Repeat("[", maxJSONDepth-1) + strings.Repeat("]", maxJSONDepth-1) + `}`
	deep := `{"a":` + strings.Repeat("[", maxJSONDepth+1) + strings.Repeat("]", maxJSONDepth+1) + `}`
	if !scanAll([]byte(ok)) {
		t.Error("rejected nesting within the bound")
	}
	if scanAll([]byte(deep)) {
		t.Error("accepted nesting beyond the bound")
	}
}

func TestJSONInt(t *testing.T) {
	cases := map[string]int64{"0": 0, "-1": -1, "9223372036854775807": 1<<63 - 1, "-9223372036854775807": -(1<<63 - 1)}
	for in, want := range cases {
		if got, ok := jsonInt([]byte(in)); !ok || got != want {
			t.Errorf("%s: %d %v", in, got, ok)
		}
	}
	for _, in := range []string{"", "-", "01", "1.0", "9223372036854775808", "99999999999999999999", "1e3", "+1"} {
		if _, ok := jsonInt([]byte(in)); ok {
			t.Errorf("%s accepted", in)
		}
	}
}

// scanAll walks every member of an object, as parseServerMsg does.
func scanAll(b []byte) bool {
	s := newObjScanner(b)
	for {
		if _, _, ok := s.next(); !ok {
			return s.err == nil
		}
	}
}

// FuzzObjScanner checks the scanner against encoding/json: every valid JSON
// object is accepted, and whatever is accepted is valid JSON unless it
// holds invalid UTF-8 (which the scanner deliberately does not check).
func FuzzObjScanner(f *testing.F) {
	for _, s := range []string{
		`{"op":"message","channel":"news","seq":42,"data":{"t":1,"n":2}}`,
		`{}`, `{"a":[1,2,{"b":null}],"c":"\u00e9\n"}`, `{"a":-0.5e-3}`, `{"a":}`, `{"a":1,}`, `[]`, `{"a":"\ud800"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ours := scanAll(b)
		var v any
		isObject := json.Unmarshal(b, &v) == nil
		if isObject {
			_, isObject = v.(map[string]any)
		}
		// Nesting beyond maxJSONDepth is refused on purpose.
		deep := bytes.Count(b, []byte("{"))+bytes.Count(b, []byte("[")) > maxJSONDepth
		if isObject && !ours && !deep {
			t.Fatalf("rejected valid object %q", b)
		}
		if ours && !json.Valid(b) && utf8.Valid(b) {
			t.Fatalf("accepted invalid JSON %q", b)
		}
		var m serverMsg
		parseServerMsg(b, &m)
	})
}

func FuzzParseServerMsg(f *testing.F) {
	f.Add([]byte(`{"op":"message","channel":"news","seq":42,"id":"x","data":{"t":1700000000000000000,"n":7}}`))
	f.Add([]byte(`{"op":"subscribed","channel":"news","seq":0}`))
	f.Add([]byte(`{"op":"error","code":400,"reason":"bad"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var m serverMsg
		if parseServerMsg(b, &m) != nil {
			return
		}
		if m.op == nil || !json.Valid(b) && utf8.Valid(b) {
			t.Fatalf("accepted %q as %+v", b, m)
		}
	})
}

func BenchmarkParseServerMsg(b *testing.B) {
	msg := []byte(`{"op":"message","channel":"wsbench-3","seq":123456,"id":"ab12cd-99","data":{"t":1700000000123456789,"n":99}}`)
	var m serverMsg
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if err := parseServerMsg(msg, &m); err != nil {
			b.Fatal(err)
		}
	}
}
