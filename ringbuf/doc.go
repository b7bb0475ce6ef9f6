// Package ringbuf holds outbound bytes for connections until the socket takes them: a Queue is a
// ring of byte segments that a flush reads as views (one slice per segment: the iovecs of a single
// writev(2)) and then tells how many bytes the socket took, and a Pool hands out size-classed byte
// chunks so that an idle connection holds no buffer at all. It is a data structure only: the
// writev itself is netpoll's, and ringbuf makes no system call.
//
// Ownership. A segment is either copied (part of a chunk borrowed from the Pool that the Queue
// copies frames into; consecutive copied segments fill one chunk even with shared segments
// between them, and the last of them returns it to the Pool once the socket has taken it all) or
// shared (a reference to an
// immutable buffer, such as a broadcast frame encoded once and queued on many connections; the
// Queue never writes to it and never returns it to a pool: the garbage collector frees it when the
// last queue lets go).
//
// Units. Each Write, Grow or Ref queues one unit (RefCont adds shared bytes to the last one) (a connection queues one frame, or its handshake
// response, per call) and the Queue remembers where each ends, so that Cut can drop what the
// socket has not started on while completing the unit it has partly taken: whatever is queued
// after a Cut (a close frame) follows whole units.
//
// Concurrency. Neither Pool nor Queue is safe for concurrent use: both belong to one event loop and
// are used only on that loop's goroutine. Shared buffers may be referenced from queues of several
// loops because nobody writes to them after they are queued.
//
// Pool discipline (as in fasthttp): a chunk or Queue handed back with Put is not touched again by
// the caller; Queue.Release returns the Queue and every owned chunk it holds.
package ringbuf
