package statefile

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/palisade-dev/palisade/internal/policy"
	pt "github.com/palisade-dev/palisade/internal/policy/policytest"
)

func randomState(seed uint64) *policy.State {
	st := policy.Compute(pt.RandomInput(rand.New(rand.NewPCG(seed, 1))))
	return &st
}

func TestSaveLoadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for seed := uint64(1); seed <= 20; seed++ {
		want := randomState(seed)
		f := &File{Path: filepath.Join(dir, "sub", "state.json")}
		if err := f.Save(want); err != nil {
			t.Fatal(err)
		}
		got, err := (&File{Path: f.Path}).Load()
		if err != nil {
			t.Fatal(err)
		}
		want.Errors = nil
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("seed %d: loaded state differs from the saved one", seed)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "sub"))
	if len(entries) != 1 {
		t.Errorf("directory holds %d files, want only the state file (no temporary left over)", len(entries))
	}
}

func TestSaveSkipsUnchanged(t *testing.T) {
	f := &File{Path: filepath.Join(t.TempDir(), "state.json")}
	st := randomState(3)
	if err := f.Save(st); err != nil {
		t.Fatal(err)
	}
	// Replace the file behind the File's back: an unchanged state must not
	// rewrite it, a changed one must.
	if err := os.WriteFile(f.Path, []byte("marker"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.Save(st); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(f.Path); string(b) != "marker" {
		t.Fatal("unchanged state was written again")
	}
	if err := f.Save(randomState(4)); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(f.Path); string(b) == "marker" {
		t.Fatal("changed state was not written")
	}
}

func TestLoadRejects(t *testing.T) {
	dir := t.TempDir()
	good := &File{Path: filepath.Join(dir, "good.json")}
	if err := good.Save(randomState(7)); err != nil {
		t.Fatal(err)
	}
	valid, err := os.ReadFile(good.Path)
	if err != nil {
		t.Fatal(err)
	}
	edit := func(fn func(m map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal(valid, &m); err != nil {
			t.Fatal(err)
		}
		fn(m)
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "not a state file"},
		{"truncated", valid[:len(valid)/2], "not a state file"},
		{"garbage", []byte("\x00\x01binary"), "not a state file"},
		{"trailing data", append(append([]byte{}, valid...), []byte(`{"x":1}`)...), "trailing data"},
		{"other format", edit(func(m map[string]any) { m["format"] = "something-else" }), "format"},
		{"future version", edit(func(m map[string]any) { m["version"] = Version + 1 }), "version"},
		{"other schema", edit(func(m map[string]any) { m["schema"] = "0000000000000000" }), "schema"},
		{"unknown envelope field", edit(func(m map[string]any) { m["extra"] = true }), "unknown field"},
		{"state edited", edit(func(m map[string]any) { m["state"].(map[string]any)["NodeName"] = "other" }), "checksum mismatch"},
		{"checksum edited", edit(func(m map[string]any) { m["checksum"] = "sha256:00" }), "checksum mismatch"},
		{"bit flip in the state", []byte(strings.Replace(string(valid), `"NodeName":"node-a"`, `"NodeName":"node-b"`, 1)), "checksum mismatch"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &File{Path: filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))}
			if err := os.WriteFile(f.Path, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			st, err := f.Load()
			if st != nil || !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load = %v, %v; want nil and a rejection mentioning %q", st, err, tc.want)
			}
		})
	}
	if _, err := (&File{Path: filepath.Join(dir, "missing")}).Load(); !errors.Is(err, os.ErrNotExist) || errors.Is(err, ErrRejected) {
		t.Fatalf("Load of a missing file = %v, want os.ErrNotExist", err)
	}
}

// The schema fingerprint must change when State's type does.
func TestSchemaFollowsType(t *testing.T) {
	type v1 struct{ A []string }
	type v2 struct {
		A []string
		B bool
	}
	fp := func(x any) string {
		var b strings.Builder
		describe(&b, reflect.TypeOf(x), map[reflect.Type]bool{})
		return b.String()
	}
	if fp(v1{}) == fp(v2{}) {
		t.Fatal("adding a field does not change the fingerprint")
	}
	if schema == "" {
		t.Fatal("empty schema")
	}
}
