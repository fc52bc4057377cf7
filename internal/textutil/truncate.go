// Package textutil holds the string helpers both binaries use to fit text
// into a bounded field (a Kubernetes status message, an API field, a kernel
// name or comment).
package textutil

// Truncate returns s cut to at most n bytes.
func Truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// Abbreviate returns s if it fits in n bytes, otherwise its first n-3 bytes
// and "...", so a reader sees that it was cut.
func Abbreviate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return Truncate(s, n-3) + "..."
}
