package pubsub

import (
	"bufio"
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wsgate/wsgate/auth"
)

// maxAPIBody bounds a request body of the HTTP API (a batch of publishes).
const maxAPIBody = 16 << 20

// Routes adds the HTTP API (docs/protocol.md) to mux, the admin listener's. Every route is
// behind the API key when one is configured. A known path asked with another method answers 405
// with Allow, any other /api/ path a JSON 404.
func (p *PubSub) Routes(mux *http.ServeMux) {
	routes := []struct {
		method, path string
		h            http.HandlerFunc
	}{
		{http.MethodPost, "/api/publish", p.handlePublish},
		{http.MethodPost, "/api/broadcast", p.handleBroadcast},
		{http.MethodPost, "/api/disconnect", p.handleDisconnect},
		{http.MethodGet, "/api/channels", p.handleChannels},
		{http.MethodGet, "/api/stats", p.handleStats},
		{http.MethodGet, "/api/history", p.handleHistory},
	}
	allow := map[string]string{}
	for _, r := range routes {
		mux.Handle(r.method+" "+r.path, p.auth(r.h))
		allow[r.path] = r.method
	}
	// The method-less "/api/" pattern also matches known paths asked with another method, so it
	// tells those apart itself.
	mux.Handle("/api/", p.auth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m, ok := allow[r.URL.Path]; ok {
			w.Header().Set("Allow", m)
			writeJSONError(w, http.StatusMethodNotAllowed, "use "+m)
			return
		}
		writeJSONError(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
	})))
}

// auth requires "Authorization: Bearer <key>" when an API key is configured.
func (p *PubSub) auth(next http.Handler) http.Handler {
	if p.cfg.APIKey == "" {
		return next
	}
	want := []byte("Bearer " + p.cfg.APIKey)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="wsgate"`)
			writeJSONError(w, http.StatusUnauthorized, "missing or wrong API key (Authorization: Bearer <key>)")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// writeJSON answers v as JSON. HTML escaping is off: the bodies go to API clients and operators'
// terminals, where "<key>" must read as such, not as "\u003ckey\u003e".
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// readBody reads a request body of at most maxAPIBody bytes of UTF-8. It answers the client
// itself (413 when the body is larger, 400 when reading fails or the bytes are not UTF-8) and returns ok=false in that case.
func readBody(w http.ResponseWriter, r *http.Request) (body []byte, ok bool) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxAPIBody+1))
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, "reading body: "+err.Error())
		return nil, false
	}
	if len(body) > maxAPIBody {
		writeJSONError(w, http.StatusRequestEntityTooLarge, "body over 16 MiB")
		return nil, false
	}
	// JSON is UTF-8 (RFC 8259 8.1). encoding/json would turn invalid bytes in an id into U+FFFD
	// without a word, and pass them through raw in data, where text frames must not carry them.
	if !utf8.Valid(body) {
		writeJSONError(w, http.StatusBadRequest, "body is not valid UTF-8")
		return nil, false
	}
	return body, true
}

func writeJSONError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// publishBody is one publish of the HTTP API: to a channel, or to a user (its personal channel
// "#<user>").
type publishBody struct {
	Channel string          `json:"channel"`
	User    string          `json:"user"`
	ID      string          `json:"id"`
	Data    json.RawMessage `json:"data"`
}

type publishReply struct {
	Channel   string `json:"channel"`
	User      string `json:"user,omitempty"`
	Seq       uint64 `json:"seq,omitempty"`
	ID        string `json:"id,omitempty"`
	Delivered int    `json:"delivered"`
	Duplicate bool   `json:"duplicate,omitempty"`
}

func decodePublish(line []byte) (publishBody, error) {
	var b publishBody
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return b, errors.New("invalid JSON: " + err.Error())
	}
	if dec.More() {
		return b, errors.New("invalid JSON: more than one object (send NDJSON with Content-Type: application/x-ndjson for a batch)")
	}
	if b.User != "" {
		if b.Channel != "" {
			return b, errors.New(`"user" and "channel" together: a publish goes to one channel or to one user`)
		}
		if !auth.ValidUser(b.User) {
			return b, errors.New(`invalid "user" (1 to 127 of A-Z a-z 0-9 _ - . : @ /)`)
		}
		b.Channel = "#" + b.User
	}
	if err := checkPublish(b.Channel, b.ID, b.Data); err != nil {
		return b, err
	}
	return b, nil
}

// handlePublish: POST /api/publish with one JSON message, or NDJSON (one per line) for a batch.
// One message: 200 {"channel","seq","delivered"}, or 208 when its id is a duplicate. A batch:
// 200 {"delivered": total, "results": [...]}, validated whole before anything is published.
func (p *PubSub) handlePublish(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	start := time.Now()
	defer func() { p.apiPub.Update(time.Since(start).Seconds()) }()
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/x-ndjson" || ct == "application/jsonl" {
		p.publishBatch(w, r, body)
		return
	}
	b, err := decodePublish(body)
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	out, err := p.Publish(r.Context(), b.Channel, b.ID, b.Data, true)
	if err != nil {
		writeJSONError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	rep := publishReply{Channel: b.Channel, User: b.User, Seq: out.Seq, ID: b.ID, Delivered: out.Delivered, Duplicate: out.Duplicate}
	status := http.StatusOK
	if out.Duplicate {
		status = http.StatusAlreadyReported
	}
	writeJSON(w, status, rep)
}

func (p *PubSub) publishBatch(w http.ResponseWriter, r *http.Request, body []byte) {
	var batch []publishBody
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 64<<10), maxAPIBody)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		b, err := decodePublish(line)
		if err != nil {
			writeJSONError(w, http.StatusBadRequest, "line "+strconv.Itoa(n)+": "+err.Error())
			return
		}
		batch = append(batch, b)
	}
	if err := sc.Err(); err != nil {
		writeJSONError(w, http.StatusBadRequest, "reading NDJSON: "+err.Error())
		return
	}
	if len(batch) == 0 {
		writeJSONError(w, http.StatusBadRequest, "empty batch")
		return
	}
	results := make([]publishReply, len(batch))
	total := 0
	for i, b := range batch {
		out, err := p.Publish(r.Context(), b.Channel, b.ID, b.Data, true)
		if err != nil {
			// Lines before this one were published; say which, so the caller resends the rest.
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"error": err.Error(),
				"published": i, "delivered": total, "results": results[:i]})
			return
		}
		results[i] = publishReply{Channel: b.Channel, User: b.User, Seq: out.Seq, ID: b.ID, Delivered: out.Delivered, Duplicate: out.Duplicate}
		total += out.Delivered
	}
	writeJSON(w, http.StatusOK, map[string]any{"delivered": total, "results": results})
}

// handleBroadcast: POST /api/broadcast {"id":"optional","data":...} to every connection.
func (p *PubSub) handleBroadcast(w http.ResponseWriter, r *http.Request) {
	var b struct {
		ID   string          `json:"id"`
		Data json.RawMessage `json:"data"`
	}
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		writeJSONError(w, http.StatusBadRequest, "invalid JSON: "+err.Error())
		return
	}
	if dec.More() {
		writeJSONError(w, http.StatusBadRequest, "invalid JSON: more than one object")
		return
	}
	if err := checkPublish("broadcast", b.ID, b.Data); err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	n, err := p.Broadcast(b.ID, b.Data, true)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"error": err.Error(), "delivered": n})
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"delivered": n})
}

// handleDisconnect: POST /api/disconnect {"user":"42"} closes the user's connections with 4002
// "disconnected by server" (on every node of a cluster) and answers how many this node closed.
func (p *PubSub) handleDisconnect(w http.ResponseWriter, r *http.Request) {
	var b struct {
		User string `json:"user"`
	}
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil || dec.More() {
		writeJSONError(w, http.StatusBadRequest, `invalid JSON: want {"user":"<sub>"}`)
		return
	}
	if !auth.ValidUser(b.User) {
		writeJSONError(w, http.StatusBadRequest, `invalid "user" (1 to 127 of A-Z a-z 0-9 _ - . : @ /)`)
		return
	}
	n, err := p.Disconnect(b.User)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"error": err.Error(), "disconnected": n})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"user": b.User, "disconnected": n})
}

// handleChannels: GET /api/channels lists channels with subscriber counts, sorted by name;
// ?prefix= filters.
func (p *PubSub) handleChannels(w http.ResponseWriter, r *http.Request) {
	list := p.table.List()
	prefix := r.URL.Query().Get("prefix")
	out := list[:0]
	for _, c := range list {
		if strings.HasPrefix(c.Channel, prefix) {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Channel < out[j].Channel })
	if out == nil {
		out = list[:0:0]
	}
	writeJSON(w, http.StatusOK, map[string]any{"channels": out})
}

// handleStats: GET /api/stats, the gateway's counters (the same list as /metrics) and the
// engines' connection figures, as JSON.
func (p *PubSub) handleStats(w http.ResponseWriter, r *http.Request) {
	out := map[string]any{"loops": len(p.engines)}
	var slow uint64
	var open int64
	for _, e := range p.engines {
		slow += e.Stats.SlowConsumers.Load()
		open = e.Connections() // one count shared by every engine of the server
	}
	out["connections"] = open
	out["slow_consumers"] = slow
	if id := p.NodeID(); id != "" {
		out["node_id"] = id
	}
	for _, c := range counters {
		out[c.stat] = c.get(p)
	}
	writeJSON(w, http.StatusOK, out)
}

// Bounds of GET /api/history's limit.
const (
	defaultHistoryLimit = 100
	maxHistoryLimit     = 1000
)

type historyMessage struct {
	Seq  uint64          `json:"seq"`
	ID   string          `json:"id,omitempty"`
	Data json.RawMessage `json:"data"`
}

// handleHistory: GET /api/history?channel=C[&since=SEQ][&limit=N], a channel's position and
// kept messages, oldest first: those after SEQ, or the newest N.
func (p *PubSub) handleHistory(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	channel := q.Get("channel")
	if !ValidChannel(channel) {
		writeJSONError(w, http.StatusBadRequest, "channel: "+errBadChannel.Error()+" (1 to 128 of A-Z a-z 0-9 _ - . : @ /)")
		return
	}
	var since uint64
	if v := q.Get("since"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeJSONError(w, http.StatusBadRequest, "since: want the seq of the last message seen (a whole number)")
			return
		}
		since = n
	}
	limit := defaultHistoryLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxHistoryLimit {
			writeJSONError(w, http.StatusBadRequest, "limit: want a whole number from 1 to "+strconv.Itoa(maxHistoryLimit))
			return
		}
		limit = n
	}
	top, msgs, ok := p.table.History(channel, since, limit)
	if !ok {
		writeJSONError(w, http.StatusNotFound, "unknown channel")
		return
	}
	out := make([]historyMessage, len(msgs))
	for i, m := range msgs {
		out[i] = historyMessage{Seq: m.Seq, ID: m.ID, Data: m.Data}
	}
	writeJSON(w, http.StatusOK, map[string]any{"channel": channel, "epoch": top.Epoch, "seq": top.Seq, "messages": out})
}
