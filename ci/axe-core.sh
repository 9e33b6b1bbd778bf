#!/usr/bin/env bash
# Fetches axe-core (the accessibility checker the browser tests run) from the npm
# registry into .venv-ci/, checks the tarball against its digest, and prints the path of
# axe.min.js. Nothing of it is served by the application.
set -euo pipefail
cd "$(dirname "$0")/.."
version=4.14.1
digest=e6b0ce02b84d892e2e33e403485e7f3d6c29e2be6df65daf44d89ba564139745
dir=.venv-ci/axe-core-$version
if [ ! -f "$dir/axe.min.js" ]; then
    mkdir -p "$dir"
    tarball="$dir/axe-core.tgz"
    curl -fsSL --retry 3 -o "$tarball" "https://registry.npmjs.org/axe-core/-/axe-core-$version.tgz"
    echo "$digest  $tarball" | sha256sum -c --quiet -
    tar -xzf "$tarball" -C "$dir" --strip-components=1 package/axe.min.js package/LICENSE
    rm "$tarball"
fi
echo "$PWD/$dir/axe.min.js"
