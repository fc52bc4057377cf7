// Package ociimage writes container images without a container engine: one
// FROM-scratch layer made of files from this machine, saved as an image
// archive that `ctr images import` (and `docker load`) reads.
package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Image is what goes into one image.
type Image struct {
	// Ref is the image's name as pods spell it, e.g.
	// registry.k8s.io/pause:3.10.2 or palisade:dev.
	Ref string
	// Files maps a path in the image (absolute) to a file on this machine;
	// its mode is kept, symlinks are followed.
	Files map[string]string
	// Symlinks maps a path in the image to its target.
	Symlinks map[string]string
	// Dirs are created empty (mode 1777 for /tmp, 0755 otherwise).
	Dirs []string
	// Entrypoint, Cmd, User and Env go into the image config.
	Entrypoint, Cmd []string
	User            string
	Env             []string
}

// Write saves img as an image archive at dst.
func Write(img Image, dst string) error {
	ref, err := name.ParseReference(img.Ref)
	if err != nil {
		return fmt.Errorf("image name %q: %w", img.Ref, err)
	}
	layerTar, err := img.layer()
	if err != nil {
		return err
	}
	// Fastest gzip: the archives are loaded once, locally, and the binaries
	// in them are large.
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithCompressionLevel(gzip.BestSpeed))
	if err != nil {
		return fmt.Errorf("layer of %s: %w", img.Ref, err)
	}
	image, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return err
	}
	cfg, err := image.ConfigFile()
	if err != nil {
		return err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	cfg.Config = v1.Config{Entrypoint: img.Entrypoint, Cmd: img.Cmd, User: img.User, Env: img.Env, WorkingDir: "/"}
	if image, err = mutate.ConfigFile(image, cfg); err != nil {
		return err
	}
	tmp := dst + ".tmp"
	if err := tarball.WriteToFile(tmp, ref, image); err != nil {
		return fmt.Errorf("write %s: %w", dst, err)
	}
	return os.Rename(tmp, dst)
}

// layer is the tar stream of the image's only layer, entries sorted so the
// same inputs give the same digest.
func (img Image) layer() ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	var addDir func(p string) error
	addDir = func(p string) error {
		p = path.Clean(p)
		if p == "/" || dirs[p] {
			return nil
		}
		if err := addDir(path.Dir(p)); err != nil {
			return err
		}
		dirs[p] = true
		mode := int64(0o755)
		if p == "/tmp" {
			mode = 0o1777
		}
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(p, "/") + "/", Mode: mode})
	}
	for _, d := range img.Dirs {
		if err := addDir(d); err != nil {
			return nil, err
		}
	}
	for _, dst := range sortedKeys(img.Files) {
		if err := addDir(path.Dir(dst)); err != nil {
			return nil, err
		}
		b, err := os.ReadFile(img.Files[dst])
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", img.Ref, err)
		}
		st, err := os.Stat(img.Files[dst])
		if err != nil {
			return nil, err
		}
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(dst, "/"), Mode: int64(st.Mode().Perm()), Size: int64(len(b))}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(b); err != nil {
			return nil, err
		}
	}
	for _, dst := range sortedKeys(img.Symlinks) {
		if err := addDir(path.Dir(dst)); err != nil {
			return nil, err
		}
		hdr := &tar.Header{Typeflag: tar.TypeSymlink, Name: strings.TrimPrefix(dst, "/"), Linkname: img.Symlinks[dst], Mode: 0o777}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
