package netpoll

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestStopAcceptingLeavesQueueToSuccessor: a loop that stops accepting leaves its listening
// socket open; connections that arrive afterwards wait in the queue and a second loop holding a
// duplicate of the socket (as a new process that inherited it would) accepts every one of them.
// Closing the first loop's descriptor does not close the socket the second one serves.
func TestStopAcceptingLeavesQueueToSuccessor(t *testing.T) {
	fds, addr, err := Listen("127.0.0.1:0", 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	old, oldRec := startLoop(t, LoopConfig{ListenFD: fds[0]}, nil)
	dup := make(chan int, 1)
	old.Post(func() {
		fd, err := old.DupListener()
		if err != nil {
			t.Error(err)
		}
		old.StopAccepting()
		dup <- fd
	})
	inherited := <-dup
	if inherited < 0 {
		t.FailNow()
	}
	bound, err := Inherit([]int{inherited})
	if err != nil {
		t.Fatal(err)
	}
	if bound.Port != addr.Port {
		t.Fatalf("inherited port %d, listener %d", bound.Port, addr.Port)
	}
	if ok, err := SameAddr("127.0.0.1:0", bound); !ok || err != nil {
		t.Fatalf("SameAddr port 0: %v %v", ok, err)
	}
	if ok, _ := SameAddr("127.0.0.2:0", bound); ok {
		t.Fatal("SameAddr matched another host")
	}
	// Clients connect while nobody accepts: they wait in the queue.
	const clients = 20
	dialQueued(t, addr, clients)
	closed := make(chan struct{})
	old.Post(func() { old.CloseListener(); close(closed) })
	<-closed
	next, nextRec := startLoop(t, LoopConfig{ListenFD: inherited}, nil)
	deadline := time.Now().Add(time.Minute)
	for {
		nextRec.mu.Lock()
		n := len(nextRec.accepted)
		nextRec.mu.Unlock()
		if n == clients {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the successor accepted %d of %d queued connections", n, clients)
		}
		time.Sleep(5 * time.Millisecond)
	}
	oldRec.mu.Lock()
	if len(oldRec.accepted) != 0 {
		t.Fatalf("the loop that stopped accepting took %d connections", len(oldRec.accepted))
	}
	oldRec.mu.Unlock()
	if next.Stats.Accepted.Load() != clients {
		t.Fatalf("accepted %d", next.Stats.Accepted.Load())
	}
}

// TestInheritRefusesWhatIsNotAListener: a connected socket, a pipe and listeners bound to two
// addresses are refused with an error.
func TestInheritRefusesWhatIsNotAListener(t *testing.T) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	if _, err := Inherit([]int{p[0]}); err == nil {
		t.Fatal("a pipe was inherited as a listener")
	}
	if _, err := Inherit(nil); err == nil {
		t.Fatal("nothing was inherited as a listener")
	}
	a, _, err := Listen("127.0.0.1:0", 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := Listen("127.0.0.1:0", 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(a[0])
	defer unix.Close(b[0])
	if _, err := Inherit([]int{a[0], b[0]}); err == nil {
		t.Fatal("listeners on two ports were inherited as one")
	}
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(s)
	if _, err := Inherit([]int{s}); err == nil {
		t.Fatal("a socket that does not listen was inherited")
	}
}
