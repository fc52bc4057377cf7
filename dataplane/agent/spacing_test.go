package agent

import (
	"testing"
	"time"
)

func TestSyncSpacing(t *testing.T) {
	const minInterval = 100 * time.Millisecond
	tests := []struct {
		name     string
		lastTook time.Duration
		want     time.Duration
	}{
		{"first sync", 0, minInterval},
		{"fast sync keeps the minimum", 5 * time.Millisecond, minInterval},
		{"half the minimum", 50 * time.Millisecond, minInterval},
		{"slow sync waits as long as it took", 400 * time.Millisecond, 800 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := syncSpacing(minInterval, tt.lastTook); got != tt.want {
				t.Errorf("syncSpacing(%s, %s) = %s, want %s", minInterval, tt.lastTook, got, tt.want)
			}
		})
	}
}
