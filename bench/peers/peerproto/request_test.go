package peerproto

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Request
		err  *RequestError
	}{
		{"subscribe", `{"op":"subscribe","channel":"news"}`, Request{Op: OpSubscribe, Channel: "news"}, nil},
		{"unsubscribe", `{"op":"unsubscribe","channel":"a-b_c.d:e@f/g"}`, Request{Op: OpUnsubscribe, Channel: "a-b_c.d:e@f/g"}, nil},
		{"publish", `{"op":"publish","channel":"news","id":"m1","data":{"a":[1,2]}}`,
			Request{Op: OpPublish, Channel: "news", ID: "m1", Data: []byte(`{"a":[1,2]}`)}, nil},
		{"publish keeps data bytes verbatim", `{"op":"publish","channel":"c","data": [ 1 , "x" ] }`,
			Request{Op: OpPublish, Channel: "c", Data: []byte(`[ 1 , "x" ]`)}, nil},
		{"publish null data", `{"op":"publish","channel":"c","data":null}`,
			Request{Op: OpPublish, Channel: "c", Data: []byte("null")}, nil},
		{"leading space and unknown member", " \n{\"x\":1,\"op\":\"subscribe\",\"channel\":\"a\"}",
			Request{Op: OpSubscribe, Channel: "a"}, nil},
		{"subscribe ignores id and data", `{"op":"subscribe","channel":"a","id":"z","data":1}`, Request{Op: OpSubscribe, Channel: "a"}, nil},
		{"longest channel", `{"op":"subscribe","channel":"` + strings.Repeat("x", 128) + `"}`, Request{Op: OpSubscribe, Channel: strings.Repeat("x", 128)}, nil},
		{"longest id", `{"op":"publish","channel":"c","id":"` + strings.Repeat("i", 128) + `","data":0}`,
			Request{Op: OpPublish, Channel: "c", ID: strings.Repeat("i", 128), Data: []byte("0")}, nil},
		{"empty", ``, Request{}, ErrMalformed},
		{"array", `[1]`, Request{}, ErrMalformed},
		{"truncated", `{"op":"subscribe"`, Request{}, ErrMalformed},
		{"trailing garbage", `{"op":"subscribe","channel":"a"}x`, Request{}, ErrMalformed},
		{"op wrong type", `{"op":1,"channel":"a"}`, Request{}, ErrMalformed},
		{"null", `null`, Request{}, ErrUnknownOp},
		{"unknown op", `{"op":"message","channel":"a"}`, Request{}, ErrUnknownOp},
		{"missing op", `{"channel":"a"}`, Request{}, ErrUnknownOp},
		{"missing channel", `{"op":"subscribe"}`, Request{}, ErrBadChannel},
		{"empty channel", `{"op":"publish","channel":"","data":1}`, Request{}, ErrBadChannel},
		{"channel with space", `{"op":"subscribe","channel":"a b"}`, Request{}, ErrBadChannel},
		{"channel with quote", `{"op":"subscribe","channel":"a\"b"}`, Request{}, ErrBadChannel},
		{"channel not ASCII", `{"op":"subscribe","channel":"é"}`, Request{}, ErrBadChannel},
		{"channel too long", `{"op":"subscribe","channel":"` + strings.Repeat("x", 129) + `"}`, Request{}, ErrBadChannel},
		{"id too long", `{"op":"publish","channel":"c","id":"` + strings.Repeat("i", 129) + `","data":0}`, Request{}, ErrBadID},
		{"publish without data", `{"op":"publish","channel":"c"}`, Request{}, ErrNoData},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRequest([]byte(tt.in))
			if err != tt.err {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if got.Op != tt.want.Op || got.Channel != tt.want.Channel || got.ID != tt.want.ID ||
				!bytes.Equal(got.Data, tt.want.Data) {
				t.Fatalf("got %+v (data %q), want %+v (data %q)", got, got.Data, tt.want, tt.want.Data)
			}
		})
	}
}

func TestParseRequestOwnsMemory(t *testing.T) {
	buf := []byte(`{"op":"publish","channel":"news","id":"i","data":"payload"}`)
	r, err := ParseRequest(buf)
	if err != nil {
		t.Fatal(err)
	}
	for i := range buf {
		buf[i] = 'X'
	}
	if r.Channel != "news" || r.ID != "i" || string(r.Data) != `"payload"` {
		t.Fatalf("request changed after its input was overwritten: %+v %q", r, r.Data)
	}
}

func TestRequestErrors(t *testing.T) {
	got := string(AppendRequestError(nil, NotSubscribed("news")))
	if want := `{"op":"error","code":404,"reason":"not subscribed to news"}`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	got = string(AppendRequestError(nil, ErrNoData))
	if want := `{"op":"error","code":400,"reason":"\"data\" is required and must be JSON"}`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	if ErrBadChannel.Error() != "invalid channel name" {
		t.Fatalf("Error() = %q", ErrBadChannel.Error())
	}
}

func TestOpString(t *testing.T) {
	for op, want := range map[Op]string{OpSubscribe: "subscribe", OpUnsubscribe: "unsubscribe", OpPublish: "publish", 0: "invalid"} {
		if got := op.String(); got != want {
			t.Errorf("Op(%d).String() = %q, want %q", op, got, want)
		}
	}
}

// FuzzParseRequest checks that ParseRequest never panics, that what it
// accepts obeys the validation rules, and that an accepted publish survives
// a round trip through AppendMessage as valid JSON that encoding/json reads
// back to the same values.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		`{"op":"subscribe","channel":"news"}`,
		`{"op":"unsubscribe","channel":"news"}`,
		`{"op":"publish","channel":"news","id":"1","data":{"k":[true,null,1.5e3]}}`,
		`{"op":"publish","channel":"a/b","id":"\u0000\"\\","data":"\ud800"}`,
		`{"op":"publish","channel":"x"}`,
		"{\"op\":\"publish\",\"channel\":\"x\",\"id\":\"\xff\xfe\",\"data\":1}",
		`[]`, `{`, ``, `null`, `{"op":"subscribe","channel":""}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := ParseRequest(in)
		if err != nil {
			if r.Op != 0 || r.Channel != "" {
				t.Fatalf("refused request %q returned fields %+v", in, r)
			}
			return
		}
		if !ValidChannel(r.Channel) || r.Op < OpSubscribe || r.Op > OpPublish {
			t.Fatalf("accepted invalid request %+v", r)
		}
		if r.Op != OpPublish {
			return
		}
		if !json.Valid(r.Data) || len(r.ID) > MaxPublishID {
			t.Fatalf("accepted publish with data %q id %q", r.Data, r.ID)
		}
		msg := AppendMessage(nil, r.Channel, 7, r.ID, r.Data)
		var back struct {
			Op      string          `json:"op"`
			Channel string          `json:"channel"`
			Seq     uint64          `json:"seq"`
			ID      string          `json:"id"`
			Data    json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(msg, &back); err != nil {
			t.Fatalf("AppendMessage produced invalid JSON %q: %v", msg, err)
		}
		if back.Op != "message" || back.Channel != r.Channel || back.Seq != 7 || back.ID != r.ID || !bytes.Equal(back.Data, r.Data) {
			t.Fatalf("round trip of %+v gave %+v", r, back)
		}
	})
}
