package pubsub

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/frame"
)

// FuzzPublishBody: the HTTP publish parser never panics, and whatever it accepts encodes into a
// frame whose payload is valid JSON carrying the same channel, id and data.
func FuzzPublishBody(f *testing.F) {
	f.Add([]byte(`{"channel":"news","id":"a\"b","data":{"x":[1,2]}}`))
	f.Add([]byte(`{"channel":"n","data":"\u0001"}`))
	f.Add([]byte(`{"channel":"bad name","data":1}`))
	f.Add([]byte(`{"channel":"n","data":1} trailing`))
	f.Add([]byte(`{"channel":"n","id":"\u0000\n","data":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		b, err := decodePublish(body)
		if err != nil {
			return
		}
		fr, off := encodeMessage(b.Channel, 7, b.ID, b.Data)
		if string(fr[off:len(fr)-1]) != string(b.Data) {
			t.Fatalf("data offset %d does not point at the data in %q", off, fr)
		}
		h, n, perr := frame.ParseHeader(fr)
		if perr != nil || n == 0 || h.OpCode != ws.OpText || !h.Fin || int(h.Length) != len(fr)-n {
			t.Fatalf("bad frame header for %q", body)
		}
		var m struct {
			Op, Channel, ID string
			Seq             uint64
			Data            json.RawMessage
		}
		if err := json.Unmarshal(fr[n:], &m); err != nil {
			t.Fatalf("encoded message is not JSON: %q: %v", fr[n:], err)
		}
		if m.Op != "message" || m.Channel != b.Channel || m.ID != b.ID || m.Seq != 7 {
			t.Fatalf("round trip: %+v from %q", m, body)
		}
		if strings.TrimSpace(string(m.Data)) != strings.TrimSpace(string(b.Data)) {
			t.Fatalf("data %q became %q", b.Data, m.Data)
		}
	})
}

// FuzzAppendJSONString: any valid UTF-8 string survives a JSON round trip.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", "quote\"back\\slash", "\x00\x1f\x7f", "κόσμε", "\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		b := appendJSONString(nil, s)
		if len(b) != jsonStringLen(s) {
			t.Fatalf("length %d, predicted %d", len(b), jsonStringLen(s))
		}
		var got string
		if err := json.Unmarshal(b, &got); err != nil || got != s {
			t.Fatalf("%q -> %s -> %q, %v", s, b, got, err)
		}
	})
}

// FuzzValidChannel: accepted names need no escaping in JSON.
func FuzzValidChannel(f *testing.F) {
	f.Add("news")
	f.Add("a/b:c@d.e-f_g")
	f.Add("x\"y")
	f.Fuzz(func(t *testing.T, name string) {
		if !ValidChannel(name) {
			return
		}
		if string(appendJSONString(nil, name)) != `"`+name+`"` {
			t.Fatalf("valid channel %q needs escaping", name)
		}
	})
}

// FuzzRequestToken: finding the token in any request target never panics, and a plain
// "token=" parameter (no escapes) comes back byte for byte wherever it sits in the query.
func FuzzRequestToken(f *testing.F) {
	f.Add("/?token=abc.def.ghi", "x")
	f.Add("/ws?a=1&token=a%2Eb&b=2", "t")
	f.Add("ws://h/p?token=", "")
	f.Add("/?token=%zz", "y")
	f.Add("/?&&token=a+b", "z.y")
	f.Fuzz(func(t *testing.T, uri, tok string) {
		requestToken(&frame.Request{URI: []byte(uri)})
		if strings.ContainsAny(tok, "&%+#? ") || strings.Contains(uri, "token=") || strings.ContainsAny(uri, "?#") {
			return
		}
		target := uri + "?x=1&token=" + tok + "&y=2"
		if got := requestToken(&frame.Request{URI: []byte(target)}); got != tok {
			t.Fatalf("requestToken(%q) = %q, want %q", target, got, tok)
		}
	})
}
