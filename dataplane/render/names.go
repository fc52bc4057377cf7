package render

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/palisade-dev/palisade/internal/policy"
	"github.com/palisade-dev/palisade/internal/textutil"
)

// This file names chains and sets: short, deterministic, readable.

func (r *renderer) policyChainName(dir policy.Direction, key string) string {
	k := dirKey{dir, key}
	if n, ok := r.chainNames[k]; ok {
		return n
	}
	n := policyChainName(dir, key)
	r.chainNames[k] = n
	return n
}

// Chain names are short, deterministic and readable: a hash of what the chain
// stands for, then a readable tail (kube-proxy names its chains this way).
func groupChainName(dir policy.Direction, policies []string) string {
	tail := policies[0]
	if len(policies) > 1 {
		tail += "_and_" + strconv.Itoa(len(policies)-1)
	}
	return dirPrefix(dir) + "-" + hash(strings.Join(policies, "\x00")) + "-" + readable(tail, 64)
}

func policyChainName(dir policy.Direction, key string) string {
	return "p" + dirPrefix(dir) + "-" + hash(key) + "-" + readable(key, 96)
}

// readable is the readable tail of a chain name: nft's grammar takes no
// ':' in an unquoted name, so the audit key prefix becomes "audit.".
func readable(key string, n int) string {
	return textutil.Truncate(strings.ReplaceAll(key, ":", "."), n)
}

func dirPrefix(dir policy.Direction) string {
	if dir == policy.Egress {
		return "eg"
	}
	return "in"
}

// hashLen is how many hex digits of a hash or model ID name an object.
const hashLen = 10

// hash is the first hashLen hex digits of the SHA-256 of s.
func hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:hashLen/2])
}

// idTag is the part of a model ID (policy.Peers.ID, policy.Ports.NamedID,
// longer hashes) that names a set.
func idTag(id string) string { return textutil.Truncate(id, hashLen) }
