# Sourced by hack/setup-test-env.sh and hack/setup-real-nodes.sh, which build
# Kubernetes binaries from the k8s.io/kubernetes Go module into one cache
# directory per Kubernetes version, ASSETS.

K8S_VERSION="${K8S_VERSION:-v1.37.2}"
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/palisade/k8s"
ASSETS="$CACHE_ROOT/$K8S_VERSION"

# k8s_wrapper_module DIR MODULE writes DIR/go.mod for a throwaway module
# MODULE that requires k8s.io/kubernetes $K8S_VERSION, and tidies it. It pins
# every staging module to its published v0.x release: k8s.io/kubernetes
# replaces them with local ./staging paths, which a dependent module cannot
# follow. Callers put the tools.go naming what they build in DIR first.
k8s_wrapper_module() {
	local dir="$1" module="$2" staging_ver="v0.${K8S_VERSION#v1.}" modfile
	mkdir -p "$dir"
	cat > "$dir/go.mod" <<MOD
module $module

go 1.26

require k8s.io/kubernetes $K8S_VERSION
MOD
	modfile="$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/$K8S_VERSION.mod"
	[ -f "$modfile" ] || go mod download -json "k8s.io/kubernetes@$K8S_VERSION" >/dev/null
	grep -E '^\s*k8s.io/[a-z0-9-]+ => \./staging' "$modfile" | awk '{print $1}' | sort -u | while read -r m; do
		echo "replace $m => $m $staging_ver" >> "$dir/go.mod"
	done
	(cd "$dir" && GOFLAGS=-mod=mod go mod tidy >&2)
}
