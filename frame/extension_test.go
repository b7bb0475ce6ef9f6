package frame

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gobwas/ws/wsflate"
)

// TestNegotiateDeflate covers the offers browsers and libraries send, the parameter variants of
// RFC 7692 section 7.1, and offers that must be declined (never failing the handshake).
func TestNegotiateDeflate(t *testing.T) {
	tests := []struct {
		value string
		ok    bool
		want  wsflate.Parameters
	}{
		// What clients send.
		{"permessage-deflate; client_max_window_bits", true, wsflate.Parameters{ClientMaxWindowBits: 1}}, // Chrome, Firefox
		{"permessage-deflate; server_no_context_takeover; client_no_context_takeover", true, // gorilla
			wsflate.Parameters{ServerNoContextTakeover: true, ClientNoContextTakeover: true}},
		{"permessage-deflate", true, wsflate.Parameters{}}, // coder/websocket context takeover
		{"permessage-deflate; client_no_context_takeover; server_no_context_takeover", true, // coder/websocket no context takeover
			wsflate.Parameters{ServerNoContextTakeover: true, ClientNoContextTakeover: true}},
		// Parameter variants.
		{"permessage-deflate; server_max_window_bits=15", true, wsflate.Parameters{ServerMaxWindowBits: 15}},
		{`permessage-deflate; server_max_window_bits="15"`, true, wsflate.Parameters{ServerMaxWindowBits: 15}},
		{"permessage-deflate; client_max_window_bits=8", true, wsflate.Parameters{ClientMaxWindowBits: 8}},
		{"permessage-deflate;client_max_window_bits=10;server_no_context_takeover", true,
			wsflate.Parameters{ClientMaxWindowBits: 10, ServerNoContextTakeover: true}},
		{"permessage-deflate \t; \tclient_max_window_bits \t= \t12", true, wsflate.Parameters{ClientMaxWindowBits: 12}},
		{"x-webkit-deflate-frame, permessage-deflate", true, wsflate.Parameters{}},
		{"foo; bar=\"baz\", permessage-deflate; client_max_window_bits", true, wsflate.Parameters{ClientMaxWindowBits: 1}},
		{", ,permessage-deflate, ", true, wsflate.Parameters{}},
		// The first acceptable offer wins.
		{"permessage-deflate; server_max_window_bits=10, permessage-deflate; client_max_window_bits", true,
			wsflate.Parameters{ClientMaxWindowBits: 1}},
		{"permessage-deflate; unknown, permessage-deflate", true, wsflate.Parameters{}},
		// Declined: windows the compressor cannot honour.
		{"permessage-deflate; server_max_window_bits=8", false, wsflate.Parameters{}},
		{"permessage-deflate; server_max_window_bits=14", false, wsflate.Parameters{}},
		// Declined: malformed parameters.
		{"permessage-deflate; server_max_window_bits", false, wsflate.Parameters{}},
		{"permessage-deflate; server_max_window_bits=16", false, wsflate.Parameters{}},
		{"permessage-deflate; server_max_window_bits=7", false, wsflate.Parameters{}},
		{"permessage-deflate; server_max_window_bits=015", false, wsflate.Parameters{}},
		{"permessage-deflate; client_max_window_bits=", false, wsflate.Parameters{}},
		{"permessage-deflate; client_max_window_bits=abc", false, wsflate.Parameters{}},
		{`permessage-deflate; client_max_window_bits="1\0"`, false, wsflate.Parameters{}},
		{`permessage-deflate; client_max_window_bits="10`, false, wsflate.Parameters{}},
		{"permessage-deflate; server_no_context_takeover=1", false, wsflate.Parameters{}},
		{"permessage-deflate; client_no_context_takeover=true", false, wsflate.Parameters{}},
		{"permessage-deflate; unknown_param", false, wsflate.Parameters{}},
		{"permessage-deflate; Server_No_Context_Takeover", false, wsflate.Parameters{}},
		// Declined: duplicates, with or without values.
		{"permessage-deflate; server_no_context_takeover; server_no_context_takeover", false, wsflate.Parameters{}},
		{"permessage-deflate; client_no_context_takeover; client_no_context_takeover", false, wsflate.Parameters{}},
		{"permessage-deflate; client_max_window_bits; client_max_window_bits", false, wsflate.Parameters{}},
		{"permessage-deflate; client_max_window_bits; client_max_window_bits=10", false, wsflate.Parameters{}},
		{"permessage-deflate; server_max_window_bits=15; server_max_window_bits=15", false, wsflate.Parameters{}},
		// Declined: not an offer of this extension, or not an extension list.
		{"", false, wsflate.Parameters{}},
		{"deflate-frame", false, wsflate.Parameters{}},
		{"PERMESSAGE-DEFLATE", false, wsflate.Parameters{}},
		{"permessage-deflate;", false, wsflate.Parameters{}},
		{"permessage-deflate; ;", false, wsflate.Parameters{}},
		{"permessage-deflate client_max_window_bits", false, wsflate.Parameters{}},
		{"=permessage-deflate", false, wsflate.Parameters{}},
		{"foo bar, permessage-deflate", false, wsflate.Parameters{}}, // the list stops parsing at the error
	}
	for _, tt := range tests {
		got, ok := NegotiateDeflate([]byte(tt.value))
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("NegotiateDeflate(%q) = %+v, %v; want %+v, %v", tt.value, got, ok, tt.want, tt.ok)
		}
	}
}

// TestUpgradeDeflate: the response accepts an acceptable offer with both no-context-takeover
// parameters, and a declined or malformed offer still upgrades, without the extension.
func TestUpgradeDeflate(t *testing.T) {
	tests := []struct {
		name    string
		headers []string
		enabled bool
		answer  string // the Sec-WebSocket-Extensions response, "" for none
	}{
		{"browser offer", plus("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"), true,
			"permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
		{"server window 15 is repeated", plus("Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=15"), true,
			"permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=15"},
		{"second header", plus("Sec-WebSocket-Extensions: foo", "Sec-WebSocket-Extensions: permessage-deflate"), true,
			"permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
		{"disabled", plus("Sec-WebSocket-Extensions: permessage-deflate"), false, ""},
		{"no offer", baseHeaders, true, ""},
		{"small server window", plus("Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=9"), true, ""},
		{"duplicate parameter", plus("Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover; client_no_context_takeover"), true, ""},
		{"unknown parameter", plus("Sec-WebSocket-Extensions: permessage-deflate; foo=bar"), true, ""},
		{"garbage", plus("Sec-WebSocket-Extensions: ;;;,,\"\"=="), true, ""},
		{"empty", plus("Sec-WebSocket-Extensions:"), true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, res := UpgradeDeflate(nil, request("GET / HTTP/1.1", tt.headers...), nil, tt.enabled)
			if res.Status != http.StatusSwitchingProtocols {
				t.Fatalf("status %d, want 101:\n%s", res.Status, out)
			}
			resp := checkResponse(t, out, res, rfcKey)
			got := resp.Header.Get("Sec-WebSocket-Extensions")
			if got != tt.answer || res.Deflate != (tt.answer != "") {
				t.Fatalf("Sec-WebSocket-Extensions %q (Deflate %v), want %q", got, res.Deflate, tt.answer)
			}
		})
	}
	// A check that refuses the request refuses it whatever was offered.
	_, res := UpgradeDeflate(nil, request("GET / HTTP/1.1", plus("Sec-WebSocket-Extensions: permessage-deflate")...),
		func(*Request) (int, string) { return 403, "no" }, true)
	if res.Status != 403 || res.Deflate {
		t.Fatalf("refused request: %+v", res)
	}
}

// FuzzNegotiateDeflate: any header value is either declined or yields parameters that a
// server compressing with a 32 KiB window and no context takeover can honour; it never panics,
// and an accepted value really contains an offer of the extension.
func FuzzNegotiateDeflate(f *testing.F) {
	for _, s := range []string{
		"permessage-deflate; client_max_window_bits",
		"permessage-deflate; server_no_context_takeover; client_no_context_takeover",
		"permessage-deflate; server_max_window_bits=15; client_max_window_bits=9",
		`permessage-deflate; client_max_window_bits="10"`,
		"foo; a=b, permessage-deflate",
		"permessage-deflate; server_max_window_bits=8",
		"permessage-deflate; x",
		"permessage-deflate; client_no_context_takeover; client_no_context_takeover",
		";,=\"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		p, ok := NegotiateDeflate(v)
		if !ok {
			if p != (wsflate.Parameters{}) {
				t.Fatalf("declined %q with parameters %+v", v, p)
			}
			return
		}
		if !strings.Contains(string(v), "permessage-deflate") {
			t.Fatalf("accepted %q, which offers no permessage-deflate", v)
		}
		if p.ServerMaxWindowBits != 0 && p.ServerMaxWindowBits != 15 {
			t.Fatalf("accepted server_max_window_bits=%d from %q", p.ServerMaxWindowBits, v)
		}
		if b := p.ClientMaxWindowBits; b != 0 && b != 1 && (b < 8 || b > 15) {
			t.Fatalf("client_max_window_bits=%d from %q", b, v)
		}
		// The accepted parameters, written back as an offer by gobwas/ws, are accepted again.
		again, ok := NegotiateDeflate([]byte(optionString(p)))
		if !ok || again != p {
			t.Fatalf("%q: accepted %+v, but its re-encoding %q gives %+v, %v", v, p, optionString(p), again, ok)
		}
	})
}

// optionString is gobwas/ws's encoding of p as an extension offer.
func optionString(p wsflate.Parameters) string {
	opt := p.Option()
	var b strings.Builder
	b.Write(opt.Name)
	opt.Parameters.ForEach(func(k, v []byte) bool {
		b.WriteString("; ")
		b.Write(k)
		if len(v) > 0 {
			b.WriteString("=")
			b.Write(v)
		}
		return true
	})
	return b.String()
}
