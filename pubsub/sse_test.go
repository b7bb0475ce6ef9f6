package pubsub

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http/httputil"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/shard"
)

func TestParseLastEventID(t *testing.T) {
	for _, tc := range []struct {
		id   string
		ok   bool
		want []lastPos
	}{
		{"", true, nil},
		{"news:AB:42", true, []lastPos{{"news", "AB", 42}}},
		{"news:a1:42,prices:EURUSD:b7:9", true, []lastPos{{"news", "a1", 42}, {"prices:EURUSD", "b7", 9}}},
		{"c::0", true, []lastPos{{"c", "", 0}}},
		{"news:AB", false, nil},
		{"news:AB:", false, nil},
		{"news:AB:-1", false, nil},
		{"news:AB:18446744073709551616", false, nil},
		{":AB:1", false, nil},
		{"bad name:AB:1", false, nil},
		{"news:A B:1", false, nil},
		{"news:AB:1,", false, nil},
		{",news:AB:1", false, nil},
		{"news:" + strings.Repeat("E", 65) + ":1", false, nil},
	} {
		got, ok := parseLastEventID(tc.id)
		if ok != tc.ok || (ok && !equalPos(got, tc.want)) {
			t.Errorf("parseLastEventID(%q) = %v %v, want %v %v", tc.id, got, ok, tc.want, tc.ok)
		}
	}
}

func equalPos(a, b []lastPos) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestParseStreamQuery(t *testing.T) {
	q, status, _ := parseStreamQuery([]byte("channel=a&x=1&channel=b%2Fc&channel=a&lastEventId=a:E:3"), nil, false, 3, "")
	if status != 0 || strings.Join(q.chans, " ") != "a b/c" || q.since[0] == nil || *q.since[0] != (shard.Position{Seq: 3, Epoch: "E"}) || q.since[1] != nil {
		t.Fatalf("query: %+v %d", q, status)
	}
	// The header wins over the query.
	q, status, _ = parseStreamQuery([]byte("channel=a&lastEventId=a:E:3"), []byte("a:F:4"), true, 3, "")
	if status != 0 || *q.since[0] != (shard.Position{Seq: 4, Epoch: "F"}) {
		t.Fatalf("header: %+v %d", q, status)
	}
	// An empty Last-Event-ID resumes nothing.
	if q, status, _ = parseStreamQuery([]byte("channel=a"), []byte(""), true, 3, "#u"); status != 0 || q.since[0] != nil {
		t.Fatalf("empty header: %+v %d", q, status)
	}
	// The extra channel (a user's personal one) comes last, once, beyond the limit, and
	// resumes like the others.
	q, status, _ = parseStreamQuery([]byte("channel=a&channel=b"), []byte("#u:E:5"), true, 2, "#u")
	if status != 0 || strings.Join(q.chans, " ") != "a b #u" || q.since[2] == nil || q.since[2].Seq != 5 {
		t.Fatalf("extra: %+v %d", q, status)
	}
	if q, _, _ = parseStreamQuery([]byte("channel=%23u&channel=b"), nil, false, 2, "#u"); strings.Join(q.chans, " ") != "#u b" {
		t.Fatalf("extra asked for: %v", q.chans)
	}
}

// FuzzStreamQuery: the SSE request parser never panics; what it accepts is 1 to max valid,
// distinct channels, and a position for a channel only where the id named it; an id the server
// writes for any accepted channel list parses back to the same positions.
func FuzzStreamQuery(f *testing.F) {
	f.Add("channel=news", "", false)
	f.Add("channel=news&channel=prices%3AEURUSD", "news:a1:42,prices:EURUSD:b7:9", true)
	f.Add("channel=a&lastEventId=a%3AE%3A1", "", false)
	f.Add("channel=%zz", "", false)
	f.Add("channel=a&channel=b&channel=c&channel=d&channel=e", "", false)
	f.Add("channel=a", "a:E:1,,", true)
	f.Add("channel=a:b", "a:b:c:d", true)
	f.Fuzz(func(t *testing.T, query, id string, header bool) {
		q, status, body := parseStreamQuery([]byte(query), []byte(id), header, 4, "")
		if status != 0 {
			if (status != 400 && status != 429) || !strings.HasSuffix(body, "\n") {
				t.Fatalf("status %d body %q", status, body)
			}
			return
		}
		if len(q.chans) == 0 || len(q.chans) > 4 {
			t.Fatalf("%d channels accepted", len(q.chans))
		}
		seen := map[string]bool{}
		for _, c := range q.chans {
			if !ValidChannel(c) || seen[c] {
				t.Fatalf("channel %q accepted (seen %v)", c, seen[c])
			}
			seen[c] = true
		}
		if q.since != nil && len(q.since) != len(q.chans) {
			t.Fatal("since does not match the channels")
		}
		// Round trip: the id of a stream on these channels names each position.
		subs := streamSubs(q.chans)
		line := beginEvent(nil, subs, false)
		pos, ok := parseLastEventID(strings.TrimSuffix(strings.TrimPrefix(string(line), "id: "), "\n"))
		if !ok || len(pos) != len(q.chans) {
			t.Fatalf("id line %q does not parse back: %v", line, pos)
		}
		for i := range pos {
			name, epoch, seq := subs.Position(i)
			if pos[i].channel != q.chans[i] || name != q.chans[i] || pos[i].epoch != epoch || pos[i].seq != seq {
				t.Fatalf("id line %q parsed as %v", line, pos)
			}
		}
	})
}

// TestEncodeEventForms: the shared event and its HTTP/1.0 view, and an event built for a stream
// of several channels, are what an independent reader (net/http's chunked reader, then line by
// line) reads as one event with the message's JSON as its data.
func TestEncodeEventForms(t *testing.T) {
	f, _ := encodeMessage("news", 42, "", []byte("{\"a\":\n1}"))
	ev := encodeEvent("news", "AB", 42, framePayload(f))
	plain := ev.b[ev.id : len(ev.b)-2]
	chunked, err := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(append(append([]byte(nil), ev.b...), "0\r\n\r\n"...))))
	if err != nil || !bytes.Equal(chunked, plain) {
		t.Fatalf("chunk %q decodes to %q (%v), want %q", ev.b, chunked, err, plain)
	}
	want := "id: news:AB:42\nevent: message\ndata: {\"op\":\"message\",\"channel\":\"news\",\"seq\":42,\"data\":{\"a\":\ndata: 1}}\n\n"
	if string(plain) != want {
		t.Fatalf("event %q, want %q", plain, want)
	}
	// EventSource joins data lines with "\n": the JSON comes back.
	var data []string
	sc := bufio.NewScanner(bytes.NewReader(plain))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			data = append(data, v)
		}
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(strings.Join(data, "\n")), &m); err != nil || m["seq"] != float64(42) {
		t.Fatalf("data %q: %v", data, err)
	}
	// A stream of two channels: its own id line, then the shared body, as one chunk.
	subs := streamSubs([]string{"news", "other"})
	subs.SetSeq(0, 41)
	subs.SetSeq(1, 7)
	_, en, _ := subs.Position(0)
	_, eo, _ := subs.Position(1)
	b := beginEvent(nil, subs, true)
	body := ev.b[ev.body : len(ev.b)-2]
	start := putChunkSize(b, len(b)-chunkRoom+len(body))
	wire := append(append(append([]byte(nil), b[start:]...), ev.b[ev.body:]...), "0\r\n\r\n"...)
	got, err := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(wire)))
	if err != nil || string(got) != "id: news:"+en+":41,other:"+eo+":7\n"+string(body) {
		t.Fatalf("two-channel event %q (%v)", got, err)
	}
}

// streamSubs subscribes a connection-less stream to chans, in order, on a table of its own, each
// channel at seq k*1000 (k its index), as a stream's positions are kept.
func streamSubs(chans []string) *shard.Subs {
	s := shard.NewSubscribers(shard.NewTable(shard.TableConfig{}), 0)
	subs := new(shard.Subs)
	for k, c := range chans {
		s.Subscribe(nil, subs, c, nil)
		subs.SetSeq(k, uint64(k)*1000)
	}
	return subs
}
