#!/usr/bin/env bash
# Checks that the front-end code edbx-ui vendors (crates/edbx-ui/assets/vendor: uPlot) is byte for
# byte the npm package pinned, with its integrity hash, in
# crates/edbx-ui/tests/browser/package-lock.json: `npm ci` installs exactly that tarball and
# refuses one whose hash differs; then each vendored file is compared with the package's.
# Needs Node.js and npm (scripts/system-packages.sh). Run by .ci/run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
say() { echo "check-ui-assets: $*" >&2; }

browser=crates/edbx-ui/tests/browser
vendor=crates/edbx-ui/assets/vendor
(cd "$browser" && npm ci --quiet --no-audit --no-fund >/dev/null)
version=$(node -p 'require("./'"$browser"'/node_modules/uplot/package.json").version')
grep -q "| $version |" "$vendor/README.md" || {
    say "error: $vendor/README.md does not name uplot $version, the version the lock pins"
    exit 1
}
status=0
for file in uPlot.iife.min.js uPlot.min.css; do
    if cmp -s "$vendor/$file" "$browser/node_modules/uplot/dist/$file"; then
        say "$vendor/$file is uplot@$version's dist/$file"
    else
        say "error: $vendor/$file differs from uplot@$version's dist/$file (copy it from $browser/node_modules/uplot/dist/)"
        status=1
    fi
done
cmp -s "$vendor/uPlot.LICENSE" "$browser/node_modules/uplot/LICENSE" || {
    say "error: $vendor/uPlot.LICENSE differs from the package's LICENSE"
    status=1
}
exit $status
