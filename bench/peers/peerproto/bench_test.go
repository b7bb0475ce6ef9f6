package peerproto

import "testing"

func BenchmarkAppendMessageFrame(b *testing.B) {
	b.ReportAllocs()
	data := []byte(`{"price":101.5,"sym":"ABC","ts":1700000000000}`)
	payload := make([]byte, 0, 256)
	frame := make([]byte, 0, 256)
	for i := 0; b.Loop(); i++ {
		payload = AppendMessage(payload[:0], "ticker", uint64(i), "id-1", data)
		frame = AppendFrame(frame[:0], OpcodeText, payload)
	}
}

func BenchmarkParseRequestPublish(b *testing.B) {
	b.ReportAllocs()
	msg := []byte(`{"op":"publish","channel":"ticker","id":"id-1","data":{"price":101.5,"sym":"ABC"}}`)
	for b.Loop() {
		if _, err := ParseRequest(msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkChannelNextWithID(b *testing.B) {
	b.ReportAllocs()
	ch := newTestRegistry().Channel("c")
	ids := make([]string, 2*DedupWindow)
	for i := range ids {
		ids[i] = string(rune('a'+i%26)) + string(rune('A'+i/26%26)) + string(rune('0'+i/676))
	}
	for i := 0; b.Loop(); i++ {
		ch.Lock()
		ch.Next(ids[i%len(ids)])
		ch.Unlock()
	}
}
