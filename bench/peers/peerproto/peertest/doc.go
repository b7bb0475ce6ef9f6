// Package peertest drives a running peer server over loopback with an
// independent client, gorilla/websocket's Dialer, and fails the test when the
// server's echo or pub/sub behaviour departs from the protocol. Each peer's
// own test starts its server on a free 127.0.0.1 port and calls Echo or
// PubSub with its URL.
//
// The checks rely only on per-connection ordering, never on timing: a
// message that must not arrive is proven absent by reading the reply the
// server must send after it.
package peertest
