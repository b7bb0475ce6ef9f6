package conn

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/gobwas/ws"
)

// TestBackpressurePausesReading: a client that sends requests faster than it reads the answers
// is not read from once its queued answers pass HighWater (TCP then blocks its writes) and is
// read again once they drain to LowWater: every answer arrives, whole and in order, the queue
// never holds more than HighWater plus one answer, and the client is not failed as a slow
// consumer although it sends many times MaxQueue. The loop is real (netpoll, edge-triggered):
// the bytes waiting in the socket when reading resumes raised their edge long before, so they are
// read only if the resume asks for it.
func TestBackpressurePausesReading(t *testing.T) {
	const (
		maxQueue = 256 << 10
		size     = 48 << 10
		count    = 64 // 3 MiB in all: 12 times MaxQueue
	)
	s := startTCP(t, Config{MaxQueue: maxQueue}, newFakeClock(), nil)
	c := s.dial(t)
	msg := func(i int) []byte {
		b := bytes.Repeat([]byte{byte(i)}, size)
		binary.BigEndian.PutUint32(b, uint32(i))
		return b
	}
	wrote := make(chan error, 1)
	go func() { // the client's writer: blocks in write once the server stops reading
		for i := range count {
			if _, err := c.c.Write(fragment(ws.OpBinary, true, msg(i))); err != nil {
				wrote <- err
				return
			}
		}
		wrote <- nil
	}()
	waitUntil(t, "the server to stop reading", func() bool { return s.e.Stats.ReadPauses.Load() > 0 })
	for i := range count {
		f := c.readFrame()
		if f.Header.OpCode != ws.OpBinary || !bytes.Equal(f.Payload, msg(i)) {
			t.Fatalf("answer %d: %v of %d bytes (seq %d), want the echo of message %d", i,
				f.Header.OpCode, len(f.Payload), binary.BigEndian.Uint32(f.Payload), i)
		}
	}
	if err := <-wrote; err != nil {
		t.Fatalf("client write: %v", err)
	}
	s.sync(t)
	st := &s.e.Stats
	if n := st.SlowConsumers.Load(); n != 0 {
		t.Fatalf("%d slow-consumer closes of a client that reads its answers", n)
	}
	hw := s.e.cfg.HighWater
	if peak := st.QueuePeak.Load(); peak > uint64(hw+size+frameHeaderMax) {
		t.Fatalf("queue peaked at %d bytes, over HighWater %d plus one answer", peak, hw)
	}
	t.Logf("%d pauses, queue peak %d bytes (HighWater %d)", st.ReadPauses.Load(), st.QueuePeak.Load(), hw)
}

// frameHeaderMax is the longest server frame header (a 64-bit length).
const frameHeaderMax = 10

// TestResumeReadsWhatTheSocketHolds: when a pause ends in the same pass that started it (the
// answers passed HighWater, then the flush wrote them all at once), the requests still waiting in
// the socket are read at once. Nothing else would wake the connection: they raised their edge
// before the pause, and the client, waiting for the answers, sends nothing more.
func TestResumeReadsWhatTheSocketHolds(t *testing.T) {
	const count = 200
	s := startTCP(t, Config{MaxQueue: 8 << 10}, newFakeClock(), nil)
	c := s.dial(t)
	var burst []byte
	for i := range count {
		burst = append(burst, fragment(ws.OpBinary, true, binary.BigEndian.AppendUint32(make([]byte, 1000), uint32(i)))...)
	}
	c.write(burst) // 200 KB: fits in the socket buffers, so the client goes on to read
	for i := range count {
		f := c.readFrame()
		if got := binary.BigEndian.Uint32(f.Payload[1000:]); got != uint32(i) {
			t.Fatalf("answer %d carries %d", i, got)
		}
	}
	if s.e.Stats.ReadPauses.Load() == 0 {
		t.Fatal("reading never paused: the test did not exercise a resume")
	}
}
