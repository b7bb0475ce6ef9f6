package conn

import (
	"sync/atomic"

	"github.com/wsgate/wsgate/frame"
)

// Reject reasons for handshakes, indexes of Stats.Rejects. They are the label values of the
// wsgate_handshake_rejects_total metric: frame's Result.Reason labels, then the engine's own.
const (
	RejectMalformed = iota
	RejectProto
	RejectMethod
	RejectHost
	RejectUpgrade
	RejectConnection
	RejectKey
	RejectVersion
	RejectRejected // refused by Config.Check
	RejectInternal
	RejectTooLarge // request head over Config.MaxHeaderBytes (431)
	RejectTimeout  // handshake deadline
	RejectMaxConns // over Config.MaxConns (503)
	RejectStream   // a request that is not an upgrade, refused by StreamHandler.OnRequest
	RejectShutdown // the server is shutting down (503), see Drain.Refuse
	NumRejects
)

// RejectNames are the metric label values for the Reject* indexes.
var RejectNames = [NumRejects]string{
	frame.ReasonMalformed, frame.ReasonProto, frame.ReasonMethod, frame.ReasonHost,
	frame.ReasonUpgrade, frame.ReasonConnection, frame.ReasonKey, frame.ReasonVersion,
	frame.ReasonRejected, frame.ReasonInternal, "too_large", "timeout", "max_conns", "stream", "shutdown",
}

func rejectIndex(reason string) int {
	for i, n := range RejectNames {
		if n == reason {
			return i
		}
	}
	return RejectMalformed
}

// CloseCodes lists the close codes counted individually in Stats.CloseSent and CloseRecv; every
// other code is counted under the last slot ("other").
var CloseCodes = [...]uint16{1000, 1001, 1002, 1003, 1005, 1006, 1007, 1008, 1009, 1010, 1011, 1012, 0}

func closeIndex(code uint16) int {
	for i, c := range CloseCodes[:len(CloseCodes)-1] {
		if c == code {
			return i
		}
	}
	return len(CloseCodes) - 1
}

// Transports: what carries a connection, the indexes of Stats.Open and the label values of
// wsgate_loop_connections{transport}.
const (
	TransportWebSocket = iota
	TransportSSE       // a stream of a StreamHandler (Server-Sent Events)
	NumTransports
)

// TransportNames are the metric label values for the Transport* indexes.
var TransportNames = [NumTransports]string{"websocket", "sse"}

// Stats are one Engine's counters. The loop goroutine writes them (but for the Compress* ones,
// see below); any goroutine may read them (they are atomics so that a metrics scrape does not
// race with the loop).
type Stats struct {
	Handshakes    atomic.Uint64
	Rejects       [NumRejects]atomic.Uint64
	FramesIn      atomic.Uint64
	FramesOut     atomic.Uint64 // frames queued
	BytesIn       atomic.Uint64
	BytesOut      atomic.Uint64
	MessagesIn    atomic.Uint64
	Writev        atomic.Uint64
	CloseSent     [len(CloseCodes)]atomic.Uint64
	CloseRecv     [len(CloseCodes)]atomic.Uint64
	PingsSent     atomic.Uint64
	PongsSent     atomic.Uint64 // answers to the peers' pings
	PingTimeouts  atomic.Uint64
	IdleTimeouts  atomic.Uint64
	Expired       atomic.Uint64 // closed at their Expirer deadline (expired tokens)
	CloseTimeouts atomic.Uint64
	SlowConsumers atomic.Uint64
	ReadPauses    atomic.Uint64 // a connection's queued output passed Config.HighWater: reading stopped
	// QueuePeak is the most output queued for one connection when a flush started (bytes): with
	// read-side backpressure, at most HighWater plus what one message's handler wrote for
	// connections that read, and MaxQueue plus one write for those that do not.
	QueuePeak   atomic.Uint64
	RateLimited atomic.Uint64
	ReadErrors  atomic.Uint64 // read(2) failures: resets and other socket errors
	WriteErrors atomic.Uint64 // writev(2) failures other than EAGAIN: EPIPE, resets
	// Open counts this engine's open connections (handshake done, OnOpen run, OnClose not yet)
	// by transport.
	Open [NumTransports]atomic.Int64
	// QueuedBytes is the output queued on this engine's connections and not yet taken by their
	// sockets, as of the end of the last loop pass (the backlog of deliveries).
	QueuedBytes atomic.Int64

	// permessage-deflate (deflate.go). The Compress* counters are also written by
	// Engine.CompressFrame, from any goroutine.
	DeflateHandshakes  atomic.Uint64 // handshakes that agreed on permessage-deflate
	MessagesInflated   atomic.Uint64 // compressed messages received and inflated
	InflateBytesIn     atomic.Uint64 // their compressed payload bytes
	InflateBytesOut    atomic.Uint64 // their bytes once inflated
	MessagesCompressed atomic.Uint64 // messages compressed (a fanned-out message once, whatever its deliveries)
	CompressBytesIn    atomic.Uint64 // their payload bytes before compression
	CompressBytesOut   atomic.Uint64 // their payload bytes after compression
	// Streams counts the streams opened (StreamHandler), EventsOut the stream events queued
	// (WriteEvent).
	Streams   atomic.Uint64
	EventsOut atomic.Uint64
}

// MessagesOut is the data frames queued: every frame but pings, pongs and close frames. It is
// derived at read time so that the hot path counts one frame once. Any goroutine.
func (s *Stats) MessagesOut() uint64 {
	ctl := s.PingsSent.Load() + s.PongsSent.Load()
	for i := range s.CloseSent {
		ctl += s.CloseSent[i].Load()
	}
	// FramesOut last: read after its parts, it is never smaller than they are.
	f := s.FramesOut.Load()
	if f < ctl {
		return 0
	}
	return f - ctl
}

// transport is the connection's Transport* index.
func (c *Conn) transport() int {
	if c.mode&modeStream != 0 {
		return TransportSSE
	}
	return TransportWebSocket
}
