package policy

import "strings"

// AuditKeyPrefix starts the key of every audit policy, so that an audit
// policy and a real policy with the same namespace and name stay distinct.
const AuditKeyPrefix = "audit:"

// AuditKey is the policy key of an audit policy.
func AuditKey(namespace, name string) string {
	return AuditKeyPrefix + namespace + "/" + name
}

// IsAuditKey tells whether key is the key of an audit policy.
func IsAuditKey(key string) bool { return strings.HasPrefix(key, AuditKeyPrefix) }

// SplitAuditKey returns the "namespace/name" a key stands for and whether
// it is the key of an audit policy.
func SplitAuditKey(key string) (policyKey string, audit bool) {
	if rest, ok := strings.CutPrefix(key, AuditKeyPrefix); ok {
		return rest, true
	}
	return key, false
}
