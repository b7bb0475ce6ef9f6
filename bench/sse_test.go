package bench

import (
	"bytes"
	"testing"
)

func TestParseSSEResponse(t *testing.T) {
	ok := "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n: ping\n\n\r\n"
	n, status, err := parseSSEResponse([]byte(ok))
	if err != nil || status != 200 || ok[n:] != "8\r\n: ping\n\n\r\n" {
		t.Fatalf("%d %d %v", n, status, err)
	}
	if n, _, err := parseSSEResponse([]byte(ok[:20])); n != 0 || err != nil {
		t.Fatalf("incomplete: %d %v", n, err)
	}
	if _, status, err := parseSSEResponse([]byte("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")); status != 404 || err != errStatus {
		t.Fatalf("404: %d %v", status, err)
	}
	if _, _, err := parseSSEResponse([]byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")); err != errNotEventStream {
		t.Fatalf("not a stream: %v", err)
	}
}

func TestNextChunkAndEventData(t *testing.T) {
	stream := []byte("2a\r\nid: c:E:1\nevent: message\ndata: {\"seq\":1}\n\n\r\n8\r\n: ping\n\n\r\n0\r\n\r\n")
	var got []string
	for {
		chunk, n, err := nextChunk(stream)
		if err == errStreamEnded {
			break
		}
		if err != nil || n == 0 {
			t.Fatalf("chunk: %d %v in %q", n, err, stream)
		}
		eventData(chunk, func(d []byte) { got = append(got, string(d)) })
		stream = stream[n:]
	}
	if len(got) != 1 || got[0] != `{"seq":1}` {
		t.Fatalf("data %q", got)
	}
	if _, n, err := nextChunk([]byte("2a\r\nid: c")); n != 0 || err != nil {
		t.Fatalf("incomplete chunk: %d %v", n, err)
	}
	if _, _, err := nextChunk([]byte("zz\r\n")); err != errBadChunk {
		t.Fatalf("bad size: %v", err)
	}
}

// FuzzSSEStream: the driver's response and chunk parsers never panic; a chunk they return lies
// inside the input, and every data value is inside its chunk.
func FuzzSSEStream(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"))
	f.Add([]byte("2a\r\nid: c:E:1\nevent: message\ndata: {\"seq\":1}\n\n\r\n"))
	f.Add([]byte("8\r\n: ping\n\n\r\n0\r\n\r\n"))
	f.Add([]byte("ffffffff\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		parseSSEResponse(b)
		for len(b) > 0 {
			chunk, n, err := nextChunk(b)
			if err != nil || n == 0 {
				return
			}
			if n > len(b) || !bytes.Contains(b[:n], chunk) {
				t.Fatalf("chunk %q of %d bytes outside %q", chunk, n, b)
			}
			eventData(chunk, func(d []byte) {
				if !bytes.Contains(chunk, d) {
					t.Fatalf("data %q outside its chunk", d)
				}
			})
			b = b[n:]
		}
	})
}
