package compiler

import (
	"crypto/sha256"
	"encoding/base32"
	"strings"
)

// Names of generated objects.
const (
	// DefaultDenyName is the default-deny policy of a zero-trust namespace.
	DefaultDenyName = "palisade-default-deny"
	// BaselineName is the policy of a zero-trust namespace that allows DNS.
	BaselineName = "palisade-baseline"
	// maxNameLength is the limit of a NetworkPolicy name (a DNS subdomain).
	maxNameLength = 253
)

// IngressPolicyName is the name of an intent's ingress policy.
func IngressPolicyName(intent string) string {
	return boundedName("palisade-" + intent)
}

// EgressPolicyName is the name of the egress policy that lets a caller of
// intentNamespace/intent reach its target. Dots separate the parts: they
// cannot occur in the parts (DNS labels), so distinct callers never collide.
func EgressPolicyName(intentNamespace, intent, caller string) string {
	return boundedName("palisade-egress." + intentNamespace + "." + intent + "." + caller)
}

// boundedName keeps name within a DNS subdomain's 253 characters: a longer one
// is cut and ends in a hash of the whole, so it stays unique and stable.
func boundedName(name string) string {
	if len(name) <= maxNameLength {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	hash := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:]))[:10]
	head := strings.TrimRight(name[:maxNameLength-len(hash)-1], ".-")
	return head + "-" + hash
}
