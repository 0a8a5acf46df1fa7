#!/usr/bin/env bash
# run.sh runs the web console's browser test: Debian's Chromium, headless,
# driven by chromedp against a three-member Cairn cluster built from this
# repository. It installs the chromium package first when /usr/bin/chromium
# is missing (a second run installs nothing). Extra arguments go to go test
# (for example -run 'InABrowser/Watch' -v); CAIRN_CONSOLE_SCREENSHOTS=docs/console
# saves a PNG of each main view into docs/console.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if [[ ! -x /usr/bin/chromium ]]; then
	echo "tests/console: installing Debian's chromium package"
	apt=(apt-get install -y --no-install-recommends chromium)
	if [[ "$(id -u)" != 0 ]]; then
		apt=(sudo "${apt[@]}")
	fi
	export DEBIAN_FRONTEND=noninteractive
	# The package lists may be missing or stale on a fresh machine.
	if ! "${apt[@]}"; then
		if [[ "$(id -u)" == 0 ]]; then apt-get update; else sudo apt-get update; fi
		"${apt[@]}"
	fi
fi

cd "$here"
go test -count=1 -timeout 5m "$@" ./...
