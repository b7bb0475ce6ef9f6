// Package auth decides who a connection is and what it may do, from what the request carries:
// it verifies the connection token (a JWT signed with HS256, RS256 or ES256), turns its claims
// into a Claims value (user id, expiry, the channels the user may subscribe and publish to),
// matches channel names against the claims' patterns, and matches a request's Origin against
// the operator's allow-list. It knows nothing of sockets, loops or channels' delivery: the
// pub/sub application calls it from the handshake check (the loop goroutine) and the SSE
// handshake.
//
// Every type here is immutable once built and safe for concurrent use; the matchers
// (Patterns.Match, Claims.MaySubscribe, Claims.MayPublish, Origins.Allowed) allocate nothing.
package auth
