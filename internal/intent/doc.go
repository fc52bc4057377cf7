// Package intent is the ServiceIntent domain both binaries share: the labels
// that tie a generated object to its intent, which namespaces are in zero
// trust, and the guard that keeps one poison input from crashing the
// process. Its subpackages resolve an intent's references (resolve) and
// compile it to NetworkPolicies (compiler).
package intent
