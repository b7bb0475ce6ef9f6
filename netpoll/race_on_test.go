//go:build race

package netpoll

// raceEnabled reports whether the test binary runs under the race detector, which makes the
// single-goroutine model tests about ten times slower without adding anything they could find:
// those tests then run fewer seeds (see TestWheelModelRandomized).
const raceEnabled = true
