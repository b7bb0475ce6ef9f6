//go:build !race

package bench

import (
	"bytes"
	"strconv"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"
)

// The driver shares the machine with the server it measures, so its per
// message work must not allocate: these tests pin that down. They are built
// without -race because the race runtime allocates on its own.

func noAllocs(t *testing.T, what string, f func()) {
	t.Helper()
	if n := testing.AllocsPerRun(200, f); n != 0 {
		t.Errorf("%s: %v allocations per run, want 0", what, n)
	}
}

func TestHotPathsDoNotAllocate(t *testing.T) {
	var h Histogram
	v := int64(1)
	noAllocs(t, "Histogram.Record", func() { h.Record(v); v = v*3 + 1 })

	payload := bytes.Repeat([]byte("x"), 512)
	dst := make([]byte, 0, 1024)
	noAllocs(t, "appendFrame", func() { dst = appendFrame(dst[:0], ws.OpText, payload, [4]byte{1, 2, 3, 4}) })

	hdr := []byte{0x81, 126, 1, 0}
	noAllocs(t, "parseFrameHeader", func() { parseFrameHeader(hdr) })

	msg := []byte(`{"op":"message","channel":"wsbench-3","seq":123456,"id":"ab-9","data":{"t":1700000000123456789,"n":99}}`)
	var m serverMsg
	noAllocs(t, "parseServerMsg", func() { parseServerMsg(msg, &m) })

	resp := []byte(goodResponse(""))
	noAllocs(t, "parseUpgradeResponse", func() { parseUpgradeResponse(resp, []byte(rfcKey)) })
}

// drain empties the peer end of a socket pair.
func drain(fd int, buf []byte) {
	for {
		if _, err := unix.Read(fd, buf); err != nil {
			return
		}
	}
}

// TestEchoRoundTripDoesNotAllocate runs the echo scenario's receive path,
// which reads an echo, records its latency and sends the next message, and
// checks it allocates nothing.
func TestEchoRoundTripDoesNotAllocate(t *testing.T) {
	cfg := DefaultConfig(ScenarioEcho)
	cfg.Size = 64
	sc := newScenario(&cfg, 1, 1, 1).(*echoScenario)
	c, peer := pairConn(t, sc, stOpen)
	l := &sc.ls[0]
	l.payload = bytes.Repeat([]byte("x"), cfg.Size)
	l.measuring = true
	sc.send(c, l)
	buf := make([]byte, 1<<16)
	drain(peer, buf)
	echo := make([]byte, cfg.Size)
	copy(echo, l.payload)
	frame := make([]byte, 0, 128)
	noAllocs(t, "echo receive+send", func() {
		echo[0] = 'a' + byte(sc.seq[0]%26)
		frame = append(frame[:0], 0x80|byte(ws.OpText), byte(len(echo)))
		frame = append(frame, echo...)
		c.consume(frame)
		drain(peer, buf)
	})
	if l.mismatch != 0 || l.received.Load() < 200 || !c.IsOpen() {
		t.Fatalf("mismatch %d received %d open %v", l.mismatch, l.received.Load(), c.IsOpen())
	}
}

// TestPubSubDeliveryDoesNotAllocate runs a subscriber's receive path: parse
// the message, check its seq, record publish-to-delivery latency.
func TestPubSubDeliveryDoesNotAllocate(t *testing.T) {
	cfg := DefaultConfig(ScenarioPubSub)
	cfg.Channels = 1
	sc := newScenario(&cfg, 1, 1, 1).(*pubsubScenario)
	c, _ := pairConn(t, sc, stOpen)
	sc.subs[0].subscribed = true
	seq := int64(0)
	body := make([]byte, 0, 256)
	frame := make([]byte, 0, 300)
	noAllocs(t, "pubsub delivery", func() {
		seq++
		body = append(body[:0], `{"op":"message","channel":"wsbench-0","seq":`...)
		body = strconv.AppendInt(body, seq, 10)
		body = append(body, `,"data":`...)
		body = appendPublishData(body, time.Now().UnixNano(), seq, 0)
		body = append(body, '}')
		frame = append(frame[:0], 0x81, byte(len(body)))
		frame = append(frame, body...)
		c.consume(frame)
	})
	l := &sc.ls[0]
	if l.delivered.Load() != seq || l.duplicated != 0 || l.unexpected != 0 || l.latency.Count() != seq {
		t.Fatalf("delivered %d dup %d unexpected %d latency samples %d, want %d", l.delivered.Load(), l.duplicated, l.unexpected, l.latency.Count(), seq)
	}
}
