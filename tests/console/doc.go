// Package console drives Cairn's web console (package console of the main
// module) in a real browser: Debian's Chromium, headless, through
// chromedp, against a real three-member cluster started with the
// testcluster harness. It is a module of its own so that chromedp stays
// out of the main module's dependencies.
//
// Run it with scripts/console-test.sh (which installs Chromium from
// Debian's packages when it is missing) or, with /usr/bin/chromium
// present, `go test ./...` here; without Chromium the test is skipped.
// Set CAIRN_CONSOLE_SCREENSHOTS to a directory (relative paths are from
// the repository root, e.g. docs/console) to save a PNG of each main view.
package console
