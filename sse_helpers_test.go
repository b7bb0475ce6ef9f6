package wsgate

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"testing"
	"time"
)

// sseEvent is one Server-Sent Event as a client parses it (the WHATWG EventSource rules, what
// a test needs of them): its fields, and the comments seen before it.
type sseEvent struct {
	ID, Event, Data string
	Retry           string
	Comments        []string
}

// sseReader parses an event stream from r, as EventSource does: lines ending in "\n", fields
// "name: value", ":" comments, a blank line ending each event.
type sseReader struct {
	t  testing.TB
	br *bufio.Reader
	// deadline, when set, is applied before each read.
	deadline func()
}

func newSSEReader(t testing.TB, r io.Reader, deadline func()) *sseReader {
	return &sseReader{t: t, br: bufio.NewReader(r), deadline: deadline}
}

// next returns the next event (with the comments before it); err at the end of the stream.
func (s *sseReader) next() (sseEvent, error) {
	var ev sseEvent
	var data []string
	seen := false
	for {
		if s.deadline != nil {
			s.deadline()
		}
		line, err := s.br.ReadString('\n')
		if err != nil {
			return ev, err
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			if !seen {
				continue
			}
			ev.Data = strings.Join(data, "\n")
			return ev, nil
		}
		if strings.HasPrefix(line, ":") {
			ev.Comments = append(ev.Comments, strings.TrimPrefix(strings.TrimPrefix(line, ":"), " "))
			continue
		}
		seen = true
		name, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch name {
		case "id":
			ev.ID = value
		case "event":
			ev.Event = value
		case "data":
			data = append(data, value)
		case "retry":
			ev.Retry = value
		default:
			s.t.Errorf("unknown SSE field %q", line)
		}
	}
}

// must returns the next event or fails the test.
func (s *sseReader) must() sseEvent {
	s.t.Helper()
	ev, err := s.next()
	if err != nil {
		s.t.Fatalf("reading the event stream: %v", err)
	}
	return ev
}

// message reads the next event, which must be a message, and decodes its data.
func (s *sseReader) message() (sseEvent, msg) {
	s.t.Helper()
	ev := s.must()
	if ev.Event != "message" {
		s.t.Fatalf("event %+v, want a message", ev)
	}
	var m msg
	if err := json.Unmarshal([]byte(ev.Data), &m); err != nil {
		s.t.Fatalf("message data %q is not JSON: %v", ev.Data, err)
	}
	return ev, m
}

// sseSubscribed is the data of a subscribed event.
type sseSubscribed struct {
	Op       string `json:"op"`
	Channels []struct {
		Channel   string `json:"channel"`
		Seq       uint64 `json:"seq"`
		Epoch     string `json:"epoch"`
		Recovered *bool  `json:"recovered"`
	} `json:"channels"`
}

// subscribed reads the next event, which must be a subscribed event.
func (s *sseReader) subscribed() (sseEvent, sseSubscribed) {
	s.t.Helper()
	ev := s.must()
	if ev.Event != "subscribed" {
		s.t.Fatalf("event %+v, want subscribed", ev)
	}
	var sub sseSubscribed
	if err := json.Unmarshal([]byte(ev.Data), &sub); err != nil || sub.Op != "subscribed" {
		s.t.Fatalf("subscribed data %q: %v", ev.Data, err)
	}
	return ev, sub
}

// sseGet opens an event stream with net/http's client; header may set Last-Event-ID.
func sseGet(t testing.TB, s *Server, target string, header http.Header) (*http.Response, *sseReader) {
	t.Helper()
	req, err := http.NewRequest("GET", "http://"+s.Addr().String()+target, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp, newSSEReader(t, resp.Body, nil)
}

// rawSSE is an event stream read over plain TCP, so that tests see the exact bytes: the head,
// the chunk framing, where the stream ends.
type rawSSE struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

func dialSSE(t testing.TB, s *Server, request string) *rawSSE {
	t.Helper()
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	return &rawSSE{t: t, c: c, br: bufio.NewReader(c)}
}

func sseRequest(target string) string {
	return "GET " + target + " HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n"
}

// head reads the response head: status and lower-cased headers.
func (r *rawSSE) head() (int, map[string]string) {
	r.t.Helper()
	return readResponseHead(r.t, r.c, r.br)
}

// body reads an error response's body (its Content-Length).
func (r *rawSSE) body(h map[string]string) string {
	r.t.Helper()
	var n int
	fmt.Sscan(h["content-length"], &n)
	b := make([]byte, n)
	if _, err := io.ReadFull(r.br, b); err != nil {
		r.t.Fatalf("body: %v", err)
	}
	return string(b)
}

// events returns a reader of the chunked body (httputil's chunked reader, not ours).
func (r *rawSSE) events() *sseReader {
	return newSSEReader(r.t, httputil.NewChunkedReader(r.br), r.extend)
}

// plainEvents returns a reader of a body that is not chunked (HTTP/1.0).
func (r *rawSSE) plainEvents() *sseReader {
	return newSSEReader(r.t, r.br, r.extend)
}

func (r *rawSSE) extend() { r.c.SetReadDeadline(time.Now().Add(20 * time.Second)) }
