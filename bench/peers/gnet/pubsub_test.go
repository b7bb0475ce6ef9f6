package main

import (
	"context"
	"testing"

	"github.com/panjf2000/gnet/v2"
	"github.com/wsgate/wsgate/bench/peers/peerproto"
)

// recordConn is a gnet.Conn that records writes; only Write is used.
type recordConn struct {
	gnet.Conn
	writes [][]byte
}

func (c *recordConn) Write(p []byte) (int, error) {
	c.writes = append(c.writes, p)
	return len(p), nil
}

// A fan-out task skips subscribers whose subscribe reply already announced
// a seq at or after the task's: they subscribed after it was published.
func TestFanoutSkipsLaterSubscribers(t *testing.T) {
	early, onTime, late := &recordConn{}, &recordConn{}, &recordConn{}
	ls := &loopSubs{conns: map[*wsConn]uint64{
		{c: early}:  3,
		{c: onTime}: 4,
		{c: late}:   5,
	}}
	frame := []byte("frame")
	if err := (&fanout{subs: ls, seq: 5, frame: frame}).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*recordConn{"early": early, "onTime": onTime} {
		if len(c.writes) != 1 || string(c.writes[0]) != "frame" {
			t.Errorf("%s subscriber got %q, want one frame", name, c.writes)
		}
	}
	if len(late.writes) != 0 {
		t.Errorf("subscriber told seq 5 got seq 5 again: %q", late.writes)
	}
}

func TestAddRemoveSub(t *testing.T) {
	reg := peerproto.NewRegistry(func() loopSets { return make(loopSets) })
	ch := reg.Channel("c")
	var loopA, loopB gnet.EventLoop = fakeLoop{id: 1}, fakeLoop{id: 2}
	a, b := &wsConn{}, &wsConn{}
	ch.Lock()
	defer ch.Unlock()
	ch.Next("")
	addSub(ch, loopA, a)
	addSub(ch, loopB, b)
	if len(ch.Subs) != 2 || ch.Subs[loopA].conns[a] != 1 {
		t.Fatalf("after adds: %d loops, a since %d", len(ch.Subs), ch.Subs[loopA].conns[a])
	}
	removeSub(ch, loopA, a)
	if _, ok := ch.Subs[loopA]; ok {
		t.Fatal("empty loop set was kept")
	}
	removeSub(ch, loopA, a) // idempotent
	if len(ch.Subs) != 1 || len(ch.Subs[loopB].conns) != 1 {
		t.Fatalf("loop B's subscriber lost: %v", ch.Subs)
	}
}

// fakeLoop is a comparable gnet.EventLoop for map keys; no method is called.
type fakeLoop struct {
	gnet.EventLoop
	id int
}
