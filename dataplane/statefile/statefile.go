package statefile

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"

	"github.com/palisade-dev/palisade/internal/policy"
)

const (
	// Format names what the file holds.
	Format = "palisade.dev/agent-state"
	// Version is the envelope's version; bump it when the envelope changes.
	Version = 1
	// DefaultPath is where the agent keeps its state on the node.
	DefaultPath = "/var/lib/palisade/agent-state.json"
)

// ErrRejected wraps every reason Load refuses a file that exists.
var ErrRejected = errors.New("state file rejected")

// envelope is the file's JSON layout.
type envelope struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	// Schema fingerprints the Go type of State (see schema): a file from a
	// build whose State differs is rejected rather than half-understood.
	Schema string `json:"schema"`
	// Checksum is "sha256:<hex>" of State's bytes as stored.
	Checksum string          `json:"checksum"`
	State    json.RawMessage `json:"state"`
}

// File is a state file. The zero value is not usable: set Path.
type File struct {
	// Path is the file's location; its directory is created if needed.
	Path string

	mu   sync.Mutex
	last string // checksum this File last wrote or loaded
}

// Save writes st atomically. It skips the write when st is what this File
// last saved or loaded, so calling it after every sync costs a hash when
// nothing changed.
func (f *File) Save(st *policy.State) error {
	cp := *st
	cp.Errors = nil
	raw, err := json.Marshal(&cp)
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	sum := checksum(raw)
	f.mu.Lock()
	defer f.mu.Unlock()
	if sum == f.last {
		return nil
	}
	data, err := json.Marshal(envelope{Format: Format, Version: Version, Schema: schema, Checksum: sum, State: raw})
	if err != nil {
		return fmt.Errorf("encode state file: %w", err)
	}
	if err := writeAtomic(f.Path, data); err != nil {
		return err
	}
	f.last = sum
	return nil
}

// Load reads the state back. A missing file gives an error that matches
// os.ErrNotExist; a file that exists but cannot be trusted gives one that
// matches ErrRejected and says why.
func (f *File) Load() (*policy.State, error) {
	data, err := os.ReadFile(f.Path)
	if err != nil {
		return nil, fmt.Errorf("read state file: %w", err)
	}
	st, sum, err := decode(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrRejected, f.Path, err)
	}
	f.mu.Lock()
	f.last = sum
	f.mu.Unlock()
	return st, nil
}

func decode(data []byte) (*policy.State, string, error) {
	var env envelope
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil {
		return nil, "", fmt.Errorf("not a state file: %w", err)
	}
	if dec.More() {
		return nil, "", errors.New("trailing data after the state")
	}
	switch {
	case env.Format != Format:
		return nil, "", fmt.Errorf("format %q, want %q", env.Format, Format)
	case env.Version != Version:
		return nil, "", fmt.Errorf("version %d, this agent reads %d", env.Version, Version)
	case env.Schema != schema:
		return nil, "", fmt.Errorf("written by an agent with another state schema (%s, this agent has %s)", env.Schema, schema)
	}
	if got := checksum(env.State); got != env.Checksum {
		return nil, "", fmt.Errorf("checksum mismatch: file says %s, state hashes to %s", env.Checksum, got)
	}
	var st policy.State
	sdec := json.NewDecoder(bytes.NewReader(env.State))
	sdec.DisallowUnknownFields()
	if err := sdec.Decode(&st); err != nil {
		return nil, "", fmt.Errorf("decode state: %w", err)
	}
	return &st, env.Checksum, nil
}

func checksum(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// writeAtomic replaces path with data: a crash at any point leaves either
// the old file or the new one.
func writeAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create state directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create temporary state file: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("write state file: %w", err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("sync state file: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("close state file: %w", err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("rename state file: %w", err)
	}
	// The rename is durable only once the directory is.
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open state directory: %w", err)
	}
	defer func() { _ = d.Close() }()
	if err = d.Sync(); err != nil {
		return fmt.Errorf("sync state directory: %w", err)
	}
	return nil
}

// schema is a fingerprint of policy.State's Go type: field names, JSON tags
// and kinds, recursively.
var schema = func() string {
	var b strings.Builder
	describe(&b, reflect.TypeOf(policy.State{}), map[reflect.Type]bool{})
	s := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(s[:8])
}()

func describe(b *strings.Builder, t reflect.Type, seen map[reflect.Type]bool) {
	if seen[t] {
		fmt.Fprintf(b, "%s;", t)
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		seen[t] = true
		fmt.Fprintf(b, "%s{", t)
		for i := range t.NumField() {
			fld := t.Field(i)
			if !fld.IsExported() || fld.Tag.Get("json") == "-" {
				continue
			}
			fmt.Fprintf(b, "%s %q:", fld.Name, fld.Tag.Get("json"))
			describe(b, fld.Type, seen)
		}
		b.WriteString("}")
	case reflect.Slice, reflect.Array, reflect.Pointer:
		fmt.Fprintf(b, "%s<", t.Kind())
		describe(b, t.Elem(), seen)
		b.WriteString(">")
	case reflect.Map:
		b.WriteString("map<")
		describe(b, t.Key(), seen)
		describe(b, t.Elem(), seen)
		b.WriteString(">")
	default:
		fmt.Fprintf(b, "%s;", t)
	}
}
