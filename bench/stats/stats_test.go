package stats

import "testing"

func TestSummarize(t *testing.T) {
	xs := make([]float64, 0, 100)
	for i := 100; i >= 1; i-- {
		xs = append(xs, float64(i))
	}
	s := Summarize(xs)
	for _, c := range []struct {
		name      string
		got, want float64
	}{{"min", s.Min, 1}, {"p10", s.P10, 10}, {"median", s.Median, 50}, {"p90", s.P90, 90}, {"p99", s.P99, 99}, {"max", s.Max, 100}, {"mean", s.Mean, 50.5}} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if one := Summarize([]float64{7}); one.P99 != 7 || one.Median != 7 || one.N != 1 {
		t.Errorf("single sample: %+v", one)
	}
	if empty := Summarize(nil); empty.N != 0 {
		t.Errorf("empty sample: %+v", empty)
	}
}
