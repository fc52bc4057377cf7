// Package compiler turns a ServiceIntent whose references are already resolved
// into the NetworkPolicies that enforce it, and renders the two policies of a
// zero-trust namespace. It is pure: no API calls, no clocks, sorted output, so
// the controller and the agents (Audit mode) compile intents the same way.
package compiler
