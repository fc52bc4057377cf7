package render

import (
	"fmt"
	"strings"
)

// Text prints the ruleset as an `nft -f` script that atomically replaces
// the ruleset's table (the same add/delete/add the netlink applier does).
// Golden files hold this text; `nft -f` loads it.
func (rs *Ruleset) Text() string {
	var b strings.Builder
	table := rs.table()
	fmt.Fprintf(&b, "add table inet %s\ndelete table inet %s\n", table, table)
	fmt.Fprintf(&b, "table inet %s {\n", table)
	// Chains are declared before the maps whose elements jump to them.
	for _, c := range rs.Chains {
		if c.IsBase() {
			fmt.Fprintf(&b, "\tchain %s {\n\t\ttype filter hook %s priority %s; policy accept;\n\t}\n", c.Name, c.Hook, priorityText(c.Priority))
		} else {
			fmt.Fprintf(&b, "\tchain %s {\n\t}\n", c.Name)
		}
	}
	for _, s := range rs.Sets {
		writeSet(&b, &s)
	}
	b.WriteString("}\n")
	for _, c := range rs.Chains {
		for _, r := range c.Rules {
			fmt.Fprintf(&b, "add rule inet %s %s %s\n", table, c.Name, r.Text())
		}
	}
	return b.String()
}

func priorityText(p int) string {
	switch {
	case p == 0:
		return "filter"
	case p < 0:
		return fmt.Sprintf("filter - %d", -p)
	}
	return fmt.Sprintf("filter + %d", p)
}

var setTypes = map[SetKind]string{
	SetAddr4:          "ipv4_addr",
	SetAddr6:          "ipv6_addr",
	SetProtoPort:      "inet_proto . inet_service",
	SetAddr4ProtoPort: "ipv4_addr . inet_proto . inet_service",
	SetAddr6ProtoPort: "ipv6_addr . inet_proto . inet_service",
	MapAddr4:          "ipv4_addr : verdict",
	MapAddr6:          "ipv6_addr : verdict",
}

func writeSet(b *strings.Builder, s *Set) {
	kw := "set"
	if s.Kind.IsMap() {
		kw = "map"
	}
	fmt.Fprintf(b, "\t%s %s {\n\t\ttype %s\n", kw, s.Name, setTypes[s.Kind])
	if s.Kind.Interval() {
		b.WriteString("\t\tflags interval\n")
	}
	if len(s.Elements) > 0 {
		b.WriteString("\t\telements = {")
		for i, e := range s.Elements {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString("\n\t\t\t" + e.text(s.Kind))
		}
		b.WriteString("\n\t\t}\n")
	}
	b.WriteString("\t}\n")
}

func (e Element) text(k SetKind) string {
	switch k {
	case SetAddr4, SetAddr6:
		if e.Addr == e.AddrLast {
			return e.Addr.String()
		}
		return e.Addr.String() + "-" + e.AddrLast.String()
	case SetProtoPort:
		if e.Port == e.PortLast {
			return fmt.Sprintf("%s . %d", protoName(e.Proto), e.Port)
		}
		return fmt.Sprintf("%s . %d-%d", protoName(e.Proto), e.Port, e.PortLast)
	case SetAddr4ProtoPort, SetAddr6ProtoPort:
		return fmt.Sprintf("%s . %s . %d", e.Addr, protoName(e.Proto), e.Port)
	case MapAddr4, MapAddr6:
		return fmt.Sprintf("%s : jump %s", e.Addr, e.Jump)
	}
	return "?"
}

func protoName(p uint8) string {
	switch p {
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 132:
		return "sctp"
	}
	return fmt.Sprint(p)
}

// Text prints one rule in nft syntax.
func (r Rule) Text() string {
	var parts []string
	ip := "ip"
	if r.Family == Family6 {
		ip = "ip6"
	}
	switch r.CtState {
	case CtEstablishedRelated:
		parts = append(parts, "ct state established,related")
	case CtInvalid:
		parts = append(parts, "ct state invalid")
	case CtNew:
		parts = append(parts, "ct state new")
	}
	if r.TCPNotSYN {
		parts = append(parts, "tcp flags & (fin | syn | rst | ack) != syn")
	}
	if r.ICMPv6Type != 0 {
		parts = append(parts, "icmpv6 type "+icmpv6TypeName(r.ICMPv6Type))
	}
	if r.SaddrSet != "" {
		parts = append(parts, fmt.Sprintf("%s saddr @%s", ip, r.SaddrSet))
	}
	if r.DaddrSet != "" {
		parts = append(parts, fmt.Sprintf("%s daddr @%s", ip, r.DaddrSet))
	}
	if r.ProtoPortSet != "" {
		parts = append(parts, "meta l4proto . th dport @"+r.ProtoPortSet)
	}
	if r.DaddrProtoPortSet != "" {
		parts = append(parts, fmt.Sprintf("%s daddr . meta l4proto . th dport @%s", ip, r.DaddrProtoPortSet))
	}
	if r.SaddrMap != "" {
		parts = append(parts, fmt.Sprintf("%s saddr vmap @%s", ip, r.SaddrMap))
	}
	if r.DaddrMap != "" {
		parts = append(parts, fmt.Sprintf("%s daddr vmap @%s", ip, r.DaddrMap))
	}
	if r.Log.Prefix != "" {
		parts = append(parts, fmt.Sprintf("limit rate %d/second burst %d packets log prefix %q group %d", r.Log.Rate, r.Log.Burst, r.Log.Prefix, r.Log.Group))
	}
	switch r.Verdict {
	case Accept:
		parts = append(parts, "accept")
	case Drop:
		parts = append(parts, "drop")
	case Jump:
		parts = append(parts, "jump "+r.Target)
	}
	return strings.Join(parts, " ")
}

// icmpv6TypeName is how nft prints an ICMPv6 type.
func icmpv6TypeName(t uint8) string {
	switch t {
	case icmpv6RouterSolicit:
		return "nd-router-solicit"
	case icmpv6NeighborSolicit:
		return "nd-neighbor-solicit"
	case icmpv6NeighborAdvert:
		return "nd-neighbor-advert"
	}
	return fmt.Sprint(t)
}
