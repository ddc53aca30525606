#!/usr/bin/env bash
# Build the Pulumi engine from Go modules into a cache outside the checkout:
#   pulumi (CLI), pulumi-language-python, pulumi-resource-pulumi-python, pulumi-language-python-exec
# all from the release pinned in tools/engine/version.txt. Reuses a complete cache; never writes into the repo.
# The files that come from this checkout (plugin_guard.py, the provider's wrapper, the Python language
# host) are re-installed on every run, so an existing cache follows the checkout without a rebuild.
# Usage: tools/engine/build.sh [CACHE_DIR]   (prints the bin directory on its last line)
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
version=$(tr -d '[:space:]' < "$repo/tools/engine/version.txt")
[ -n "$version" ] || { echo "build.sh: no release in tools/engine/version.txt" >&2; exit 1; }
cache=${1:-${PULUMI_ENGINE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sendgrid-click-tracking/pulumi-v$version}}
bin="$cache/bin"
stamp="$bin/.complete"

# put SRC DEST MODE: install unless identical, by rename (a pulumi running meanwhile never sees half a file).
put() {
    cmp -s "$1" "$2" && return 0
    install -m "$3" "$1" "$2.tmp.$$" && mv -f "$2.tmp.$$" "$2"
}

install_python_host() {
    put "$repo/tools/engine/plugin_guard.py" "$bin/plugin_guard.py" 0644
    put "$repo/tools/engine/language_host.py" "$bin/language_host.py" 0644
    put "$repo/tools/engine/pulumi-language-python" "$bin/pulumi-language-python" 0755
}

# The dynamic provider runs under plugin_guard.py, so it cannot outlive the engine: the SDK's script
# moves to sdk/ unchanged, and the wrapper takes its name. A cache from before the guard holds the SDK's
# script under that name; it is moved on the first run, with no moment where the name is missing.
install_provider_guard() {
    local name=pulumi-resource-pulumi-python
    mkdir -p "$bin/sdk"
    if [ -f "$bin/$name" ] && ! grep -q 'plugin_guard.py' "$bin/$name"; then
        put "$bin/$name" "$bin/sdk/$name" 0755
    fi
    [ -x "$bin/sdk/$name" ] || { echo "build.sh: $bin/sdk/$name is missing; delete $cache and run again" >&2; exit 1; }
    put "$repo/tools/engine/plugin_guard.py" "$bin/plugin_guard.py" 0644
    put "$repo/tools/engine/$name" "$bin/$name" 0755
}

if [ -f "$stamp" ] && [ "$(head -n 1 "$stamp")" = "v$version" ] && "$bin/pulumi" version >/dev/null 2>&1; then
    # What comes from this checkout: keep the cached copies in step with it.
    install_provider_guard
    if grep -q '^language-host=python$' "$stamp"; then install_python_host; fi
    echo "$bin"
    exit 0
fi
command -v go >/dev/null || { echo "build.sh: Go is needed to build the Pulumi engine (or install Pulumi $version with the official installer)" >&2; exit 1; }

mkdir -p "$cache/src/cli" "$cache/src/langhost" "$bin"
export GOFLAGS=-mod=mod CGO_ENABLED=0
log() { echo "engine: $*" >&2; }

# 1. The CLI, from a wrapper module (pkg/go.mod has replace directives, so `go install` is refused).
pkg_mod=$(cd "$cache/src/cli" && go mod download -json "github.com/pulumi/pulumi/pkg/v3@v$version" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
replaces=$(grep '^replace ' "$pkg_mod" | grep -v '=> \.\./' || true)
cat > "$cache/src/cli/go.mod" <<GOMOD
module enginebuild

go 1.24

require (
	github.com/pulumi/pulumi/pkg/v3 v$version
	github.com/pulumi/pulumi/sdk/v3 v$version
)

$replaces
GOMOD
cat > "$cache/src/cli/tools.go" <<'GO'
//go:build tools

package tools

import _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
GO
ldflags="-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$version"
log "building pulumi v$version (a few minutes the first time)"
(cd "$cache/src/cli" && go mod tidy >&2 && go build -trimpath -tags osusergo,grpcnotrace -ldflags "$ldflags" \
    -o "$bin/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi >&2)

# 2. The two scripts the Python flow needs, from the sdk/v3 module (zips keep no file modes).
#    The provider's script goes to sdk/, behind the wrapper that install_provider_guard puts in its place.
sdk_dir=$(cd "$cache/src/cli" && go list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3)
mkdir -p "$bin/sdk"
install -m 0755 "$sdk_dir/python/dist/pulumi-resource-pulumi-python" "$bin/sdk/pulumi-resource-pulumi-python"
install -m 0755 "$sdk_dir/python/cmd/pulumi-language-python-exec" "$bin/pulumi-language-python-exec"
install_provider_guard

# 3. The language host: the official module at the release commit's pseudo-version if the proxy
#    has it; otherwise language_host.py, which serves the same gRPC contract (see its docstring).
info=$(cd "$cache/src/cli" && go mod download -json "github.com/pulumi/pulumi/sdk/v3@v$version" | sed -n 's/.*"Info": "\(.*\)".*/\1/p')
hash=$(sed -n 's/.*"Hash": *"\([0-9a-f]\{12\}\).*/\1/p' "$info")
when=$(sed -n 's/.*"Time": *"\([0-9TZ:-]*\)".*/\1/p' "$info" | tr -d 'TZ:-')
langhost=python
if [ -n "$hash" ] && [ -n "$when" ]; then
    pseudo="v3.0.0-$when-$hash"
    cat > "$cache/src/langhost/go.mod" <<GOMOD
module langhostbuild

go 1.24
GOMOD
    if (cd "$cache/src/langhost" && go get "github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3@$pseudo" >&2 \
        && go build -trimpath -ldflags "$ldflags" -o "$bin/pulumi-language-python" \
           github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3 >&2); then
        langhost=go
    fi
fi
if [ "$langhost" = python ]; then
    log "the official pulumi-language-python module is not available from this Go proxy;"
    log "installing the Python implementation of the same host (tools/engine/language_host.py)"
    install_python_host
fi

printf 'v%s\nlanguage-host=%s\n' "$version" "$langhost" > "$stamp"
log "ready in $bin ($("$bin/pulumi" version), language host: $langhost)"
echo "$bin"
