#!/usr/bin/env bash
# Provides a real Kubernetes control plane for cluster tests: kube-apiserver, kube-controller-manager and
# kubectl v1.20.2, built once from Debian bookworm's `kubernetes` source package, plus Debian's etcd. They are
# cached outside the repo; the last line of stdout is that directory, so callers can do
#   KUBEBUILDER_ASSETS="$(scripts/envtest.sh)"
# Everything else goes to stderr. Safe to run again: a finished cache is reused at once. See docs/envtest.md.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/scripts/lib/deps.sh"

version="v1.20.2"
assets="${TANDEM_ENVTEST_DIR:-$HOME/.cache/tandem/envtest/$version}"

log() { echo "envtest: $*" >&2; }

# The Kubernetes binaries built from source, as `make WHAT=` targets (cmd/<name>).
kube_bins=(kube-apiserver kube-controller-manager kubectl)

# Whether $assets/$1 is there and reports $version.
kube_bin_ready() {
  local bin="$assets/$1"
  [ -x "$bin" ] || return 1
  case "$1" in
    kubectl) "$bin" version --client --short 2>/dev/null | grep -qx "Client Version: $version" ;;
    *) [ "$("$bin" --version 2>/dev/null)" = "Kubernetes $version" ] ;;
  esac
}

# The kube_bins that are missing or of another version (an older cache may lack kubectl).
missing_kube_bins() {
  local bin
  for bin in "${kube_bins[@]}"; do kube_bin_ready "$bin" || echo "$bin"; done
}

assets_ready() {
  [ -x "$assets/etcd" ] && [ -z "$(missing_kube_bins)" ]
}

if assets_ready; then echo "$assets"; exit 0; fi

mkdir -p "$assets"
assets="$(cd "$assets" && pwd)"
# Two test runs starting together must not build into the same tree.
exec 9>"$assets/.lock"
flock 9
if assets_ready; then echo "$assets"; exit 0; fi

build_log="$assets/build.log"
: >"$build_log"
# Runs a step with its output in the build log; on failure shows the log's tail and stops.
step() {
  local what="$1"; shift
  log "$what (log: $build_log)"
  echo "==> $what: $*" >>"$build_log"
  if ! "$@" >>"$build_log" 2>&1; then
    log "FAILED: $what; last lines of $build_log:"
    tail -n 60 "$build_log" >&2
    exit 1
  fi
}

# A deb-src entry for each bookworm entry of debian.sources, in a file of our own, so that
# `apt-get source kubernetes` works and the machine's own sources stay untouched.
ensure_deb_src() {
  local ours=/etc/apt/sources.list.d/tandem-deb-src.sources
  [ -f "$ours" ] && return 0
  # Already there (an existing deb-src stanza or line for bookworm)?
  if cat /etc/apt/sources.list.d/*.sources 2>/dev/null \
      | awk -v RS= '/Types:[^\n]*deb-src/ && /Suites:[^\n]*bookworm/ { found = 1 } END { exit !found }' \
    || grep -sqE '^[[:space:]]*deb-src[[:space:]].*[[:space:]]bookworm[[:space:]]' \
      /etc/apt/sources.list /etc/apt/sources.list.d/*.list; then
    return 0
  fi
  local generated=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    # deb822 stanzas are separated by blank lines; keep the bookworm ones and retype them.
    generated="$(awk -v RS= '/Suites:[^\n]*bookworm/ && /Types:[^\n]*deb/ {
        n = split($0, lines, "\n")
        for (i = 1; i <= n; i++) { if (lines[i] ~ /^Types:/) lines[i] = "Types: deb-src"; print lines[i] }
        print ""
      }' /etc/apt/sources.list.d/debian.sources)"
  fi
  if [ -z "$generated" ]; then
    generated="Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
  fi
  log "adding $ours"
  printf '# Added by Tandem scripts/envtest.sh: source packages for building kube-apiserver.\n%s\n' \
    "$generated" >"$ours"
}

start=$(date +%s)
ensure_deb_src
step "apt-get update" apt-get update -qq
apt_updated=1 # for deps.sh's apt_install
# Go 1.19, make and rsync for Kubernetes' build, etcd, and reflect2 1.0.2 to replace the vendored 1.0.1.
step "installing build dependencies" apt_install golang-go make rsync etcd-server golang-github-modern-go-reflect2-dev

work="$assets/build"
mkdir -p "$work"
cd "$work"
orig_tarball() { local f; for f in kubernetes_*.orig.tar.gz; do [ -f "$f" ] && echo "$f" && return 0; done; return 1; }
if ! orig="$(orig_tarball)"; then # a rerun after a failed build reuses the download
  step "downloading Debian's kubernetes source package" apt-get source --download-only kubernetes
  orig="$(orig_tarball)" || { log "FAILED: apt-get source left no kubernetes_*.orig.tar.gz in $work"; exit 1; }
fi
rm -rf "kubernetes-${version#v}"
step "unpacking $orig" tar xzf "$orig"
src="$work/kubernetes-${version#v}"
[ -d "$src" ] || { log "FAILED: $orig did not unpack to $src"; exit 1; }
cd "$src"

# The vendored reflect2 1.0.1 makes kube-apiserver segfault (json-iterator map encoding) when built with
# Go >= 1.18; Debian's reflect2 1.0.2 is API-compatible and fixes it.
reflect2_debian=/usr/share/gocode/src/github.com/modern-go/reflect2
reflect2_vendor=vendor/github.com/modern-go/reflect2
rm -f "$reflect2_vendor"/*.go "$reflect2_vendor"/*.s
for f in "$reflect2_debian"/*.go "$reflect2_debian"/*.s; do
  case "$f" in *_test.go) continue ;; esac
  cp "$f" "$reflect2_vendor/"
done
echo "==> replaced $reflect2_vendor with $reflect2_debian" >>"$build_log"

# Kubernetes 1.20's hack/lib/golang.sh points GOCACHE at _output/local/go/cache inside the tree anyway;
# setting it here keeps any Go run outside that setup away from ~/.cache/go-build too.
export GOFLAGS="" GOCACHE="$work/gocache"
build_start=$(date +%s)
# Only what is missing: a cache from before kubectl was added builds just kubectl.
mapfile -t to_build < <(missing_kube_bins)
if [ "${#to_build[@]}" -gt 0 ]; then
  what="$(printf 'cmd/%s ' "${to_build[@]}")"
  step "make generated_files" make generated_files
  step "building ${to_build[*]} (several minutes)" make WHAT="${what% }"
fi
build_end=$(date +%s)

for bin in "${to_build[@]}"; do
  install -m 0755 "_output/bin/$bin" "$assets/.$bin.tmp"
  mv -f "$assets/.$bin.tmp" "$assets/$bin"
done
install -m 0755 "$(readlink -f /usr/bin/etcd)" "$assets/.etcd.tmp"
mv -f "$assets/.etcd.tmp" "$assets/etcd"

if ! assets_ready; then
  log "FAILED: these binaries do not report Kubernetes $version: $(missing_kube_bins | tr '\n' ' ')"
  exit 1
fi
cd "$assets"
rm -rf "$work" # the sources, the tree with _output and the Go build cache: about 2 GB
end=$(date +%s)
echo "==> done: make took $((build_end - build_start))s, everything $((end - start))s" >>"$build_log"
log "built ${to_build[*]} $version in $((end - start))s (make: $((build_end - build_start))s)"
echo "$assets"
