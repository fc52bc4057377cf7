package netns

import (
	"errors"
	"sync"
)

// Set creates namespaces named <prefix>-<name> and removes them all on
// Close. Each user (a kernel test suite, the benchmarks) has a prefix of
// its own, so users running at the same time never share a name.
type Set struct {
	prefix string

	mu   sync.Mutex
	made []*NS
}

// NewSet returns an empty set whose namespaces start with prefix.
func NewSet(prefix string) *Set { return &Set{prefix: prefix} }

// Name is the full name Create gives name.
func (s *Set) Name(name string) string { return s.prefix + "-" + name }

// Create creates namespace <prefix>-<name> with its loopback up. A leftover
// of the same name (from an interrupted run) is removed first.
func (s *Set) Create(name string) (*NS, error) {
	full := s.Name(name)
	if err := Delete(full); err != nil {
		return nil, err
	}
	ns, err := Create(full)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.made = append(s.made, ns)
	s.mu.Unlock()
	return ns, nil
}

// Close deletes every namespace the set created, last first.
func (s *Set) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for i := len(s.made) - 1; i >= 0; i-- {
		errs = append(errs, s.made[i].Delete())
	}
	s.made = nil
	return errors.Join(errs...)
}
