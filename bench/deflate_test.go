package bench

import (
	"bytes"
	"compress/flate"
	"testing"
	"time"
)

func TestDeflateAnswer(t *testing.T) {
	tests := []struct {
		value   string
		offered bool
		ok      bool
		err     error
	}{
		{"permessage-deflate; server_no_context_takeover; client_no_context_takeover", true, true, nil},
		{"permessage-deflate;server_no_context_takeover", true, true, nil},
		{"permessage-deflate; client_no_context_takeover", true, false, errDeflateAnswer},
		{"permessage-deflate", true, false, errDeflateAnswer},
		{"permessage-deflate; server_no_context_takeover", false, false, errUnrequestedExt},
		{"x-webkit-deflate-frame", true, false, errUnrequestedExt},
	}
	for _, tt := range tests {
		ok, err := deflateAnswer([]byte(tt.value), tt.offered)
		if ok != tt.ok || err != tt.err {
			t.Errorf("deflateAnswer(%q, %v) = %v, %v; want %v, %v", tt.value, tt.offered, ok, err, tt.ok, tt.err)
		}
	}
}

func TestParseFrameHeaderRSV1(t *testing.T) {
	for _, tt := range []struct {
		b       []byte
		deflate bool
		err     error
	}{
		{[]byte{0xc1, 0x05}, true, nil},     // text, RSV1
		{[]byte{0xc1, 0x05}, false, errRsv}, // not agreed
		{[]byte{0x40, 0x05}, true, errRsv},  // continuation
		{[]byte{0xc9, 0x00}, true, errRsv},  // ping
		{[]byte{0xa1, 0x05}, true, errRsv},  // RSV2
		{[]byte{0x42, 0x05}, true, nil},     // binary, RSV1, not final
	} {
		h, _, err := parseFrameHeaderExt(tt.b, tt.deflate)
		if err != tt.err || (err == nil && !h.rsv1) {
			t.Errorf("parseFrameHeaderExt(%x, %v) = %+v, %v; want %v", tt.b, tt.deflate, h, err, tt.err)
		}
	}
}

func TestLoopInflate(t *testing.T) {
	msg := bytes.Repeat([]byte(`{"t":1,"n":2,"p":"pppp"}`), 500)
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.BestSpeed)
	w.Write(msg)
	w.Flush()
	z := b.Bytes()[:b.Len()-4]
	l := &Loop{}
	for range 3 { // the decompressor is reused
		got, err := l.inflate(nil, z)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("inflate: %v, %d bytes", err, len(got))
		}
	}
	if _, err := l.inflate(nil, []byte{0xff, 0xff}); err != errInflate {
		t.Fatalf("garbage: %v", err)
	}
}

// TestPubSubCompression runs pubsub with -compression against gorilla/websocket with
// compression enabled: every connection agrees, every delivery arrives compressed and is
// inflated and counted as usual, and fewer bytes cross the wire than without.
func TestPubSubCompression(t *testing.T) {
	compressing := func(s *testServer) { s.up.EnableCompression = true }
	run := func(compress bool) *Result {
		s := newTestServer(t, compressing)
		cfg := testConfig(s.wsURL("/ws"), ScenarioPubSub)
		cfg.Conns = 60
		cfg.Channels = 2
		cfg.PublishRate = 200
		cfg.Size = 1024
		cfg.Duration = 400 * time.Millisecond
		cfg.PublishURL = s.httpURL("/api/publish")
		cfg.Compression = compress
		res := runConfig(t, cfg)
		checkPubSub(t, res, 30)
		return res
	}
	z, plain := run(true), run(false)
	eq(t, "deflate conns", z.Deflated, 60)
	if z.CompressedIn < z.PubSub.Delivered {
		t.Errorf("%d compressed messages for %d deliveries", z.CompressedIn, z.PubSub.Delivered)
	}
	eq(t, "deflate conns without -compression", plain.Deflated, 0)
	eq(t, "compressed messages without -compression", plain.CompressedIn, 0)
	zPer := float64(z.BytesIn) / float64(max(1, z.PubSub.Delivered))
	plainPer := float64(plain.BytesIn) / float64(max(1, plain.PubSub.Delivered))
	if zPer >= plainPer {
		t.Errorf("%.0f bytes per delivery compressed, %.0f plain", zPer, plainPer)
	}
}
