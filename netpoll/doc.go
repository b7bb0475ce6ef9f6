// Package netpoll runs event loops over epoll(7): each Loop is one goroutine locked to its OS
// thread (optionally pinned to a CPU) that owns an epoll instance, its own SO_REUSEPORT listening
// socket, an eventfd for wake-ups, a multi-producer task queue and a timing wheel. It knows file
// descriptors and callbacks, nothing of WebSocket.
//
// Invariants:
//   - Everything a Loop owns (its registered fds, its Wheel, the Handler's state for its fds) is
//     touched only on the loop goroutine. The only methods other goroutines may call are Post,
//     Stop, Done, and the accessors documented "Any goroutine" (Index, Now, Logger, WheelStats).
//     Counters other goroutines read (LoopStats, WheelStats) are atomics the loop writes; the
//     fields of Loop and Wheel each say who may touch them.
//   - Epoll data carries the fd and a 32-bit generation, never a Go pointer. The loop records the
//     generation registered for each fd; an event whose generation no longer matches (the fd was
//     closed, and perhaps reused by a new connection, earlier in the same epoll_wait batch) is
//     dropped, so a stale event never reaches the new owner of that fd number.
//   - Connection sockets are registered edge-triggered (EPOLLET) for EPOLLIN|EPOLLOUT|EPOLLRDHUP:
//     the handler must read until a short read or EAGAIN (or ask for a Requeue), and writes that
//     hit EAGAIN wait for the next EPOLLOUT edge. No epoll_ctl(MOD) is ever needed per connection.
//   - Listening sockets are level-triggered and accepted in bounded batches, so one busy listener
//     cannot starve the connections of its loop. When accept fails for lack of descriptors or
//     memory (EMFILE, ENFILE, ENOBUFS, ENOMEM) the listener is paused for a short backoff instead
//     of spinning on a readiness that cannot be served.
//   - A listening socket can outlive the loop's interest in it: DupListener hands a duplicate to
//     another process (a zero-downtime restart; Inherit takes such sockets over), and
//     StopAccepting takes the socket out of the epoll set explicitly, without closing it, so that
//     the connections queued on it go to the process that now polls it.
//   - Wake-ups are coalesced: however many tasks are posted between two passes, the eventfd is
//     written at most once.
package netpoll
