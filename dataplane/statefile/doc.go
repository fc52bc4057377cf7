// Package statefile keeps the node's last successfully synced policy.State
// in a file, so that an agent that starts without an API server (a restart
// during an outage, or a node reboot that emptied the kernel's tables) can
// program its last known good state before its informers have synced, as
// Antrea does with its on-disk policy fallback (antrea#5739).
//
// A file is written atomically (a temporary file in the same directory,
// fsync, rename, fsync of the directory) so a crash leaves the old file or
// the new one, never a mix. It carries a format name, a version, a
// fingerprint of the Go type it encodes and a SHA-256 checksum of the state:
// Load rejects a file that is corrupt, truncated, of another format or
// version, or written by a build whose policy.State differs, with an error
// that says which. A rejected file is never half-applied: the caller then
// waits for the API server, as without a file.
//
// State.Errors is not saved: it is diagnostics about policy objects, which
// the backends do not read.
package statefile
