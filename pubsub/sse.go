package pubsub

import (
	"bytes"
	"net/url"
	"strconv"

	"github.com/wsgate/wsgate/conn"
	"github.com/wsgate/wsgate/frame"
	"github.com/wsgate/wsgate/shard"
)

// Server-Sent Events (docs/protocol.md): GET /sse?channel=A&channel=B (or /events) on the
// WebSocket listener is a stream of the channels' messages, served by the same loops, queues and
// timers as a WebSocket (conn's streams). An event is
//
//	id: A:<epoch>:<seq>[,B:<epoch>:<seq>...]
//	event: message
//	data: <the JSON object a WebSocket subscriber gets>
//
// The id names the position of every channel of the stream, so that one Last-Event-ID resumes
// them all through history, as a WebSocket subscribe with "since" does. A message's event is
// encoded once per publish (sseEvent) and shared by every stream: a stream of one channel queues
// it whole, a stream of several queues its own id line (copied) before the shared rest.

// SSE paths on the WebSocket listener.
const (
	ssePath       = "/sse"
	sseEventsPath = "/events"
)

// sseRetry is the reconnection delay the first event asks EventSource for, in milliseconds.
const sseRetry = 2000

// maxEpochLen bounds an epoch in a Last-Event-ID (the server's are 8 characters; a cluster's
// come from the stream's numbering and are as short).
const maxEpochLen = 64

// A stream keeps no state of its own beyond the gateway's client: where it stands on each
// channel (the epoch and the seq of the last event it was sent) is its subscription's position
// in the loop's subscriber set (shard.Subs.Position), which every delivery moves, and whether
// its body is chunked is the connection's (conn.Conn.Chunked). So an idle SSE subscriber costs
// what a WebSocket one does.

// sseEvent is a message's event, encoded once per publish and shared, immutable, by every stream
// of every loop:
//
//	b = "<size>\r\n" "id: C:E:S\n" "event: message\ndata: JSON\n\n" "\r\n"
//
// the whole of it a chunk of a chunked body; b[id:len(b)-2] the event of an HTTP/1.0 body; from
// body on, what a stream of several channels queues after its own id line.
type sseEvent struct {
	b     []byte
	id    int
	body  int
	epoch string
}

// encodeEvent builds the shared event of message seq of channel under epoch; payload is the
// JSON object of the WebSocket frame (its payload).
func encodeEvent(channel, epoch string, seq uint64, payload []byte) *sseEvent {
	var hdr [32]byte
	body := appendEventBody(make([]byte, 0, len(payload)+32), payload)
	idLen := len("id: ::\n") + len(channel) + len(epoch) + uintLen(seq)
	size := strconv.AppendUint(hdr[:0], uint64(idLen+len(body)), 16)
	b := make([]byte, 0, len(size)+2+idLen+len(body)+2)
	b = append(b, size...)
	b = append(b, "\r\n"...)
	ev := &sseEvent{id: len(b), epoch: epoch}
	b = append(b, "id: "...)
	b = appendPos(b, channel, epoch, seq)
	b = append(b, '\n')
	ev.body = len(b)
	b = append(b, body...)
	ev.b = append(b, "\r\n"...)
	return ev
}

// appendEventBody appends "event: message\ndata: <payload>\n\n". A line break in payload (JSON
// whitespace between tokens: strings hold none) continues the data on a new "data: " line, which
// EventSource joins back with "\n".
func appendEventBody(b, payload []byte) []byte {
	b = append(b, "event: message\ndata: "...)
	b = appendData(b, payload)
	return append(b, "\n\n"...)
}

func appendData(b, payload []byte) []byte {
	for len(payload) > 0 {
		i := bytes.IndexAny(payload, "\r\n")
		if i < 0 {
			return append(b, payload...)
		}
		b = append(b, payload[:i]...)
		if payload[i] == '\r' && i+1 < len(payload) && payload[i+1] == '\n' {
			i++
		}
		b = append(b, "\ndata: "...)
		payload = payload[i+1:]
	}
	return b
}

func appendPos(b []byte, channel, epoch string, seq uint64) []byte {
	b = append(b, channel...)
	b = append(b, ':')
	b = append(b, epoch...)
	b = append(b, ':')
	return strconv.AppendUint(b, seq, 10)
}

func uintLen(v uint64) int {
	n := 1
	for v >= 10 {
		v /= 10
		n++
	}
	return n
}

// streamQuery is a parsed SSE request: its channels, in order without repeats, and the position
// to resume each from (nil: none).
type streamQuery struct {
	chans []string
	since []*shard.Position
}

// parseStreamQuery reads the channels of an SSE request from its query (channel=, repeated) and
// the positions to resume from: lastEventID (the Last-Event-ID header) when present, else the
// query's lastEventId. Other parameters (token=, a cache buster) are ignored. extra, when not
// empty and not asked for, is added as the last channel without counting toward maxChannels
// (an authenticated user's personal channel). It returns an HTTP status and a body for a bad
// request: 400 for a malformed query, no channel, an invalid channel name or an invalid
// Last-Event-ID, 429 for more than maxChannels channels.
func parseStreamQuery(rawQuery, lastEventID []byte, hasHeader bool, maxChannels int, extra string) (q streamQuery, status int, body string) {
	var queryID string
	hasQueryID := false
	for rest := rawQuery; len(rest) > 0; {
		var kv []byte
		if i := bytes.IndexByte(rest, '&'); i >= 0 {
			kv, rest = rest[:i], rest[i+1:]
		} else {
			kv, rest = rest, nil
		}
		if len(kv) == 0 {
			continue
		}
		k, v := kv, []byte(nil)
		if i := bytes.IndexByte(kv, '='); i >= 0 {
			k, v = kv[:i], kv[i+1:]
		}
		switch string(k) {
		case "channel", "lastEventId":
		default:
			continue
		}
		val, err := url.QueryUnescape(string(v))
		if err != nil {
			return q, 400, "malformed query: " + err.Error() + "\n"
		}
		if string(k) == "lastEventId" {
			queryID, hasQueryID = val, true
			continue
		}
		if !ValidChannel(val) {
			return q, 400, "invalid channel name " + strconv.Quote(val) + " (1 to 128 of A-Z a-z 0-9 _ - . : @ /)\n"
		}
		dup := false
		for _, c := range q.chans {
			if c == val {
				dup = true
				break
			}
		}
		if dup {
			continue
		}
		if len(q.chans) == maxChannels {
			return q, 429, "too many channels (limit " + strconv.Itoa(maxChannels) + ")\n"
		}
		q.chans = append(q.chans, val)
	}
	if len(q.chans) == 0 {
		return q, 400, "missing channel: use /sse?channel=NAME (repeat channel= for more)\n"
	}
	if extra != "" {
		found := false
		for _, c := range q.chans {
			found = found || c == extra
		}
		if !found {
			q.chans = append(q.chans, extra)
		}
	}
	id := queryID
	if hasHeader {
		id = string(lastEventID)
	} else if !hasQueryID {
		return q, 0, ""
	}
	pos, ok := parseLastEventID(id)
	if !ok {
		return q, 400, "invalid Last-Event-ID: want channel:epoch:seq items joined by \",\" (the id of the last event received)\n"
	}
	q.since = make([]*shard.Position, len(q.chans))
	for i, name := range q.chans {
		for j := range pos {
			if pos[j].channel == name {
				q.since[i] = &shard.Position{Seq: pos[j].seq, Epoch: pos[j].epoch}
				break
			}
		}
	}
	return q, 0, ""
}

type lastPos struct {
	channel, epoch string
	seq            uint64
}

// parseLastEventID parses an event id: "<channel>:<epoch>:<seq>" items joined by ",". Channel
// names hold no ",", epochs no ":" (a channel name may hold ":": the last two colons of an item
// are the separators). An empty id resumes nothing.
func parseLastEventID(id string) ([]lastPos, bool) {
	if id == "" {
		return nil, true
	}
	var out []lastPos
	for id != "" {
		item := id
		if i := indexByte(id, ','); i >= 0 {
			item, id = id[:i], id[i+1:]
			if id == "" {
				return nil, false // a trailing ","
			}
		} else {
			id = ""
		}
		c2 := lastIndexByte(item, ':')
		if c2 < 0 {
			return nil, false
		}
		c1 := lastIndexByte(item[:c2], ':')
		if c1 < 0 {
			return nil, false
		}
		name, epoch, seqStr := item[:c1], item[c1+1:c2], item[c2+1:]
		seq, err := strconv.ParseUint(seqStr, 10, 64)
		if err != nil || !ValidChannel(name) || !validEpoch(epoch) {
			return nil, false
		}
		out = append(out, lastPos{channel: name, epoch: epoch, seq: seq})
	}
	return out, true
}

// validEpoch: at most maxEpochLen printable ASCII characters other than ":" and "," (empty is a
// channel a cluster has not numbered yet).
func validEpoch(e string) bool {
	if len(e) > maxEpochLen {
		return false
	}
	for i := 0; i < len(e); i++ {
		if c := e[i]; c <= ' ' || c >= 0x7f || c == ':' || c == ',' {
			return false
		}
	}
	return true
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

func lastIndexByte(s string, c byte) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// OnRequest implements conn.StreamHandler: it opens an SSE stream for GET /sse or /events, or
// says why not (404 another path, 405 another method, 400 and 429 from parseStreamQuery). Loop
// goroutine.
func (p *PubSub) OnRequest(c *conn.Conn, r *frame.Request) (status int, headers, body string) {
	if path := string(r.Path()); path != ssePath && path != sseEventsPath {
		return 404, "", "not found: Server-Sent Events are at /sse?channel=NAME (or /events); " +
			"a WebSocket handshake needs \"Upgrade: websocket\"\n"
	}
	if string(r.Method) != "GET" {
		return 405, "Allow: GET\r\n", "Server-Sent Events need GET\n"
	}
	// Check (Admit) has applied the Origin allow-list and the token: its claims are in the
	// client state it stored, and decide the channels as for a WebSocket subscribe.
	cl, _ := c.Data.(*client)
	if cl == nil {
		cl = &client{}
	}
	personal := ""
	if cl.claims != nil {
		personal = cl.claims.Personal()
	}
	lastID, hasHeader := r.Header("Last-Event-ID")
	q, status, body := parseStreamQuery(r.RawQuery(), lastID, hasHeader, p.cfg.MaxChannels, personal)
	if status != 0 {
		return status, "", body
	}
	for _, name := range q.chans {
		if ok, why := p.maySubscribe(cl, name); !ok {
			p.authn.forbidden.Add(1)
			return 403, "", why + "\n"
		}
	}
	loop := c.Engine().Loop().Index()
	chunked := r.Minor >= 1
	c.Data = cl
	scratch := p.sseScratch[loop]
	origin, hasOrigin := r.Header("Origin")
	c.OpenStream(p.appendStreamHead(scratch[:0], chunked, origin, hasOrigin), chunked)
	// Counted before any Join: a publish numbered after this stream joined sees it and encodes
	// the shared event (Publish reads the count under the lock Join takes).
	p.streams.Add(1)

	type joined struct {
		top       shard.Position
		replay    [][]byte
		from      uint64
		recovered bool
	}
	js := make([]joined, len(q.chans))
	for i, name := range q.chans {
		var since *shard.Position
		if q.since != nil {
			since = q.since[i]
		}
		top, replay, recovered, added := p.subs[loop].Subscribe(c, &cl.subs, name, since)
		if !added || cl.subs.Len() != i+1 {
			panic("BUG: pubsub: a stream's channels are not its subscriptions in order")
		}
		js[i] = joined{top: top, replay: replay, recovered: recovered, from: top.Seq}
		if recovered {
			// Until the replay below has run, the stream stands where it resumes from.
			js[i].from = since.Seq
			cl.subs.SetSeq(i, since.Seq)
		}
	}
	// The subscribed event, with the position the stream resumes from as its id (so a drop
	// during the replay resumes it), then the missed messages, then (later tasks) live ones.
	b := beginEvent(scratch[:0], &cl.subs, chunked)
	b = append(b, "retry: "...)
	b = strconv.AppendInt(b, sseRetry, 10)
	b = append(b, "\nevent: subscribed\ndata: {\"op\":\"subscribed\",\"channels\":["...)
	for i := range js {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendChannelPos(b, q.chans[i], js[i].top, q.since != nil && q.since[i] != nil, js[i].recovered)
	}
	b = append(b, "]}\n\n"...)
	full, ev := endEvent(b, chunked)
	p.sseScratch[loop] = full[:0]
	ok := c.WriteEvent(ev, nil) == nil
	for i := range js {
		for j, f := range js[i].replay {
			if ok {
				ok = p.writeCopy(c, &cl.subs, i, js[i].from+uint64(j)+1, f)
			}
		}
		cl.subs.SetSeq(i, js[i].top.Seq) // live deliveries follow on from here
	}
	return 0, "", ""
}

// appendStreamHead appends the response head of an SSE stream. A request with an Origin (a
// browser page, maybe of another origin) is answered with CORS as -allowed-origins says: without
// an allow-list any page may read the stream ("*"); with one, the origin is named when it is on
// it (Admit refuses the others before this).
func (p *PubSub) appendStreamHead(b []byte, chunked bool, origin []byte, hasOrigin bool) []byte {
	b = append(b, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"+
		"X-Accel-Buffering: no\r\nConnection: close\r\n"...)
	switch {
	case !hasOrigin:
	case !p.cfg.Origins.Enabled():
		b = append(b, "Access-Control-Allow-Origin: *\r\n"...)
	case p.cfg.Origins.Allowed(origin, true):
		b = append(b, "Access-Control-Allow-Origin: "...)
		b = append(b, origin...)
		b = append(b, "\r\nVary: Origin\r\n"...)
	}
	if chunked {
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	}
	return append(b, "\r\n"...)
}

// appendChannelPos appends {"channel":C,"seq":N,"epoch":"E"} with "recovered" when asked.
func appendChannelPos(b []byte, channel string, top shard.Position, askedRecovery, recovered bool) []byte {
	return append(appendPosFields(append(b, '{'), channel, top, askedRecovery, recovered), '}')
}

// chunkRoom is the room beginEvent leaves for a chunk-size line (16 hex digits and CRLF).
const chunkRoom = 18

// beginEvent starts an event in b (empty) for a stream with subscriptions subs: room for the
// chunk-size line when chunked, then the id line with the position of every channel.
// endEvent finishes it.
func beginEvent(b []byte, subs *shard.Subs, chunked bool) []byte {
	if chunked {
		b = append(b, make([]byte, chunkRoom)...)
	}
	b = append(b, "id: "...)
	for k := range subs.Len() {
		if k > 0 {
			b = append(b, ',')
		}
		name, epoch, seq := subs.Position(k)
		b = appendPos(b, name, epoch, seq)
	}
	return append(b, '\n')
}

// endEvent completes an event begun by beginEvent: for a chunked stream it appends the chunk's
// CRLF and writes the chunk-size line just before the event. It returns the buffer (to keep as
// scratch) and the event, which starts after the room the size line did not take.
func endEvent(b []byte, chunked bool) (full, ev []byte) {
	if !chunked {
		return b, b
	}
	n := len(b) - chunkRoom
	b = append(b, "\r\n"...)
	start := putChunkSize(b, n)
	return b, b[start:]
}

// putChunkSize writes the chunk-size line of a chunk of n bytes at the end of the chunkRoom bytes
// at the start of b, and returns where it starts.
func putChunkSize(b []byte, n int) int {
	var hdr [chunkRoom]byte
	size := strconv.AppendUint(hdr[:0], uint64(n), 16)
	size = append(size, "\r\n"...)
	start := chunkRoom - len(size)
	copy(b[start:], size)
	return start
}

// writeCopy queues message seq of channel k (its WebSocket frame f, whose payload is the JSON
// object) on stream c as an event of its own, copied (recovery, and a delivery without a shared
// event). False if the stream was closed (slow consumer).
func (p *PubSub) writeCopy(c *conn.Conn, subs *shard.Subs, k int, seq uint64, f []byte) bool {
	subs.SetSeq(k, seq)
	loop := c.Engine().Loop().Index()
	b := beginEvent(p.sseScratch[loop][:0], subs, c.Chunked())
	b = appendEventBody(b, framePayload(f))
	full, ev := endEvent(b, c.Chunked())
	p.sseScratch[loop] = full[:0]
	return c.WriteEvent(ev, nil) == nil
}

// framePayload returns the payload of a complete, unmasked frame the gateway encoded.
func framePayload(f []byte) []byte {
	_, hn, err := frame.ParseHeader(f)
	if err != nil || hn == 0 {
		panic("BUG: pubsub: a message frame does not parse")
	}
	return f[hn:]
}

// streamWrite is every loop's shard.Subscribers.StreamWrite: message seq of channel k reaches
// stream c, with ev the shared *sseEvent of a delivery (nil: encode from frame), or a
// *streamRenumber. Loop goroutine; no allocation.
func (p *PubSub) streamWrite(c *conn.Conn, k int, seq uint64, frameBytes []byte, ev any) bool {
	cl, _ := c.Data.(*client)
	if cl == nil {
		return false
	}
	// The subscription already stands at seq (shard moved it before this call).
	chunked := c.Chunked()
	switch e := ev.(type) {
	case *sseEvent:
		if cl.subs.Len() == 1 {
			if chunked {
				return c.WriteEvent(nil, e.b) == nil
			}
			return c.WriteEvent(nil, e.b[e.id:len(e.b)-2]) == nil
		}
		loop := c.Engine().Loop().Index()
		b := beginEvent(p.sseScratch[loop][:0], &cl.subs, chunked)
		p.sseScratch[loop] = b[:0]
		body := e.b[e.body : len(e.b)-2]
		if !chunked {
			return c.WriteEvent(b, body) == nil
		}
		start := putChunkSize(b, len(b)-chunkRoom+len(body))
		return c.WriteEvent(b[start:], e.b[e.body:]) == nil
	case *streamRenumber:
		loop := c.Engine().Loop().Index()
		b := beginEvent(p.sseScratch[loop][:0], &cl.subs, chunked)
		b = append(b, "event: subscribed\ndata: {\"op\":\"subscribed\",\"channels\":["...)
		name, _, _ := cl.subs.Position(k)
		b = appendChannelPos(b, name, shard.Position{Seq: e.from, Epoch: e.epoch}, e.restarted, false)
		b = append(b, "]}\n\n"...)
		full, out := endEvent(b, chunked)
		p.sseScratch[loop] = full[:0]
		return c.WriteEvent(out, nil) == nil
	default:
		return p.writeCopy(c, &cl.subs, k, seq, frameBytes)
	}
}

// streamRenumber is the ev of a Renumber (cluster mode): the channel's numbering moved to from
// under epoch (restarted: messages may have been lost).
type streamRenumber struct {
	from      uint64
	epoch     string
	restarted bool
}
