package localcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/palisade-dev/palisade/internal/ociimage"
)

// xtablesExtensions is where Debian's iptables loads its match and target
// modules from (dlopen at run time, so ldd does not list them).
const xtablesExtensions = "/usr/lib/x86_64-linux-gnu/xtables"

// nodeImages are the images real nodes hold, built from binaries on this
// machine: Palisade's from bin/ (make build), the rest from the assets
// directory (hack/setup-real-nodes.sh).
func (c *Cluster) nodeImages(bins map[string]string) ([]ociimage.Image, error) {
	palisade, err := palisadeImage(c.State.BinDir)
	if err != nil {
		return nil, err
	}
	podserver := filepath.Join(c.State.BinDir, "podserver")
	imgs := []ociimage.Image{
		palisade,
		{
			Ref: PauseImage, Files: map[string]string{"/pause": bins["pause"]},
			Entrypoint: []string{"/pause"}, User: "65535:65535",
		},
		{
			Ref: CoreDNSImage, Files: map[string]string{"/coredns": bins["coredns"]},
			Dirs: []string{"/tmp"}, Entrypoint: []string{"/coredns"},
		},
		{
			Ref: PodserverImage, Files: map[string]string{"/podserver": podserver},
			Entrypoint: []string{"/podserver"},
		},
	}
	if bins["agnhost"] != "" {
		imgs = append(imgs, ociimage.Image{
			Ref: AgnhostImage, Files: map[string]string{"/agnhost": bins["agnhost"]},
			Dirs: []string{"/tmp"}, Entrypoint: []string{"/agnhost"},
		})
	}
	return imgs, nil
}

// palisadeImage is the image config/default runs, the same as the
// Dockerfile's: /controller and /agent, and iptables (nf_tables and legacy
// variants, with their libraries and extensions) for the agent's iptables
// backend. The nftables backend speaks netlink and needs none of it.
func palisadeImage(binDir string) (ociimage.Image, error) {
	img := ociimage.Image{
		Ref: PalisadeImage,
		Files: map[string]string{
			"/controller": filepath.Join(binDir, "controller"),
			"/agent":      filepath.Join(binDir, "agent"),
		},
		Symlinks:   map[string]string{},
		Dirs:       []string{"/tmp", "/run"},
		Entrypoint: []string{"/controller"},
		User:       "65532:65532",
		Env:        []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "XTABLES_LIBDIR=" + xtablesExtensions},
	}
	for _, f := range img.Files {
		if _, err := os.Stat(f); err != nil {
			return img, fmt.Errorf("no %s (make build): %w", f, err)
		}
	}
	var objects []string
	for _, multi := range []string{"xtables-nft-multi", "xtables-legacy-multi"} {
		p := "/usr/sbin/" + multi
		if _, err := os.Stat(p); err != nil {
			return img, fmt.Errorf("no %s (apt-get install iptables): %w", p, err)
		}
		objects = append(objects, p)
		variant := strings.TrimSuffix(strings.TrimPrefix(multi, "xtables-"), "-multi")
		for _, fam := range []string{"iptables", "ip6tables"} {
			for _, suffix := range []string{"", "-save", "-restore"} {
				img.Symlinks["/usr/sbin/"+fam+"-"+variant+suffix] = multi
				if variant == "nft" {
					img.Symlinks["/usr/sbin/"+fam+suffix] = multi
				}
			}
		}
	}
	exts, _ := filepath.Glob(filepath.Join(xtablesExtensions, "*.so"))
	objects = append(objects, exts...)
	for _, o := range objects {
		img.Files[o] = o
		libs, err := sharedLibraries(o)
		if err != nil {
			return img, err
		}
		for _, l := range libs {
			img.Files[l] = l
		}
	}
	return img, nil
}

// sharedLibraries lists the libraries (and the loader) an ELF object needs,
// as ldd resolves them.
func sharedLibraries(object string) ([]string, error) {
	out, err := exec.Command("ldd", object).Output()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %w", object, err)
	}
	var libs []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
			libs = append(libs, f[2])
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			libs = append(libs, f[0])
		}
	}
	return libs, nil
}

// buildNodeImages writes the node images as archives, all at once:
// Palisade's under Dir/images (bin/ changes with every build), the others
// once into cacheDir (the assets directory's images/), rebuilt only when
// older than their binary.
func (c *Cluster) buildNodeImages(bins map[string]string, cacheDir string) ([]string, error) {
	imgs, err := c.nodeImages(bins)
	if err != nil {
		return nil, err
	}
	archives := make([]string, len(imgs))
	errs := make([]error, len(imgs))
	var wg sync.WaitGroup
	for i, img := range imgs {
		dir := filepath.Join(cacheDir, "images")
		if img.Ref == PalisadeImage || img.Ref == PodserverImage {
			dir = filepath.Join(c.Dir, "images")
		}
		archives[i] = filepath.Join(dir, strings.NewReplacer("/", "_", ":", "_").Replace(img.Ref)+".tar")
		if upToDate(archives[i], img) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if errs[i] = os.MkdirAll(dir, 0o755); errs[i] == nil {
				errs[i] = ociimage.Write(img, archives[i])
			}
		}()
	}
	wg.Wait()
	return archives, errors.Join(errs...)
}

// upToDate reports whether archive exists and is newer than every file in
// img.
func upToDate(archive string, img ociimage.Image) bool {
	st, err := os.Stat(archive)
	if err != nil {
		return false
	}
	for _, f := range img.Files {
		fst, err := os.Stat(f)
		if err != nil || fst.ModTime().After(st.ModTime()) {
			return false
		}
	}
	return true
}

// importImages loads image archives into a node's containerd, in the
// namespace the CRI plugin serves.
func (c *Cluster) importImages(ctx context.Context, n NodeState, ctr string, archives []string) error {
	for _, a := range archives {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		out, err := exec.CommandContext(ctx, ctr, "--address", c.containerdSocket(n), "-n", "k8s.io",
			"images", "import", a).CombinedOutput()
		cancel()
		if err != nil {
			return fmt.Errorf("import %s into %s: %w: %s", filepath.Base(a), n.Name, err, out)
		}
	}
	return nil
}
