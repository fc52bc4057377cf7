package policy

import (
	"fmt"
	"net/netip"
	"reflect"
	"testing"
)

func rng(a, b string) IPRange { return IPRange{netip.MustParseAddr(a), netip.MustParseAddr(b)} }

func TestMergeRanges(t *testing.T) {
	tests := []struct {
		in, want []IPRange
	}{
		{nil, nil},
		{[]IPRange{rng("10.0.0.5", "10.0.0.9"), rng("10.0.0.1", "10.0.0.4")}, []IPRange{rng("10.0.0.1", "10.0.0.9")}},
		{[]IPRange{rng("10.0.0.1", "10.0.0.3"), rng("10.0.0.5", "10.0.0.9")}, []IPRange{rng("10.0.0.1", "10.0.0.3"), rng("10.0.0.5", "10.0.0.9")}},
		{[]IPRange{rng("10.0.0.1", "10.0.0.9"), rng("10.0.0.2", "10.0.0.3")}, []IPRange{rng("10.0.0.1", "10.0.0.9")}},
		{[]IPRange{rng("fd00::1", "fd00::1"), rng("255.255.255.255", "255.255.255.255"), rng("::", "::")},
			[]IPRange{rng("255.255.255.255", "255.255.255.255"), rng("::", "::"), rng("fd00::1", "fd00::1")}},
	}
	for _, tc := range tests {
		if got := MergeRanges(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("MergeRanges(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestSubtractRanges(t *testing.T) {
	p := func(s string) IPRange { return PrefixRange(netip.MustParsePrefix(s)) }
	tests := []struct {
		from, cut, want []IPRange
	}{
		{[]IPRange{p("10.0.0.0/8")}, []IPRange{p("10.1.0.0/16")}, []IPRange{rng("10.0.0.0", "10.0.255.255"), rng("10.2.0.0", "10.255.255.255")}},
		{[]IPRange{p("10.0.0.0/8")}, []IPRange{p("10.0.0.0/8")}, nil},
		{[]IPRange{p("10.0.0.0/8")}, []IPRange{p("0.0.0.0/0")}, nil},
		{[]IPRange{p("0.0.0.0/0")}, []IPRange{p("0.0.0.0/1"), p("255.255.255.255/32")}, []IPRange{rng("128.0.0.0", "255.255.255.254")}},
		{[]IPRange{p("10.0.0.0/8")}, []IPRange{p("fd00::/8")}, []IPRange{p("10.0.0.0/8")}},
		{[]IPRange{p("::/0")}, []IPRange{p("fd00::/16")}, []IPRange{rng("::", "fcff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), rng("fd01::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")}},
		{[]IPRange{p("10.0.0.0/30")}, []IPRange{p("10.0.0.1/32"), p("10.0.0.2/32")}, []IPRange{rng("10.0.0.0", "10.0.0.0"), rng("10.0.0.3", "10.0.0.3")}},
	}
	for _, tc := range tests {
		if got := SubtractRanges(tc.from, tc.cut); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("SubtractRanges(%v, %v) = %v, want %v", tc.from, tc.cut, got, tc.want)
		}
	}
}

func TestPrefixes(t *testing.T) {
	tests := []struct {
		r    IPRange
		want string
	}{
		{rng("10.0.0.0", "10.0.0.255"), "[10.0.0.0/24]"},
		{rng("10.0.0.1", "10.0.0.1"), "[10.0.0.1/32]"},
		{rng("10.0.0.1", "10.0.0.6"), "[10.0.0.1/32 10.0.0.2/31 10.0.0.4/31 10.0.0.6/32]"},
		{rng("0.0.0.0", "255.255.255.255"), "[0.0.0.0/0]"},
		{rng("128.0.0.0", "255.255.255.254"), "[128.0.0.0/2 192.0.0.0/3 224.0.0.0/4 240.0.0.0/5 248.0.0.0/6 252.0.0.0/7 254.0.0.0/8 255.0.0.0/9 255.128.0.0/10 255.192.0.0/11 255.224.0.0/12 255.240.0.0/13 255.248.0.0/14 255.252.0.0/15 255.254.0.0/16 255.255.0.0/17 255.255.128.0/18 255.255.192.0/19 255.255.224.0/20 255.255.240.0/21 255.255.248.0/22 255.255.252.0/23 255.255.254.0/24 255.255.255.0/25 255.255.255.128/26 255.255.255.192/27 255.255.255.224/28 255.255.255.240/29 255.255.255.248/30 255.255.255.252/31 255.255.255.254/32]"},
		{rng("fd00::", "fd00::ffff"), "[fd00::/112]"},
	}
	for _, tc := range tests {
		if got := fmt.Sprint(tc.r.Prefixes()); got != tc.want {
			t.Errorf("%v.Prefixes() = %s, want %s", tc.r, got, tc.want)
		}
	}
}
