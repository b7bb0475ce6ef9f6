package conn

import "testing"

// TestWaterMarks: HighWater and LowWater default to a half and a quarter of MaxQueue (its own
// default included), follow a HighWater that is set, and settings that cannot work are refused.
func TestWaterMarks(t *testing.T) {
	for _, tc := range []struct {
		cfg       Config
		high, low int
	}{
		{Config{}, DefaultMaxQueue / 2, DefaultMaxQueue / 4},
		{Config{MaxQueue: 1000}, 500, 250},
		{Config{MaxQueue: 1000, HighWater: 100}, 100, 50},
		{Config{MaxQueue: 1000, HighWater: 900, LowWater: 800}, 900, 800},
		{Config{MaxQueue: 1}, 1, 0},
	} {
		if err := tc.cfg.Validate(); err != nil {
			t.Fatalf("%+v refused: %v", tc.cfg, err)
		}
		d := tc.cfg.WithDefaults()
		if d.HighWater != tc.high || d.LowWater != tc.low {
			t.Fatalf("%+v: marks %d/%d, want %d/%d", tc.cfg, d.HighWater, d.LowWater, tc.high, tc.low)
		}
		if dd := d.WithDefaults(); dd.HighWater != d.HighWater || dd.LowWater != d.LowWater {
			t.Fatalf("%+v: defaults applied twice differ", tc.cfg)
		}
	}
	for _, bad := range []Config{
		{HighWater: -1},
		{LowWater: -1},
		{MaxQueue: 1000, HighWater: 1001},
		{HighWater: DefaultMaxQueue + 1},
		{MaxQueue: 1000, HighWater: 400, LowWater: 400},
		{MaxQueue: 1000, LowWater: 600},
	} {
		if bad.Validate() == nil {
			t.Fatalf("%+v accepted", bad)
		}
	}
}
