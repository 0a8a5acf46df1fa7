package console

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestConsoleAtScale times the keys tree against a store someone filled
// (a million keys, say): CAIRN_CONSOLE_SCALE_URL names a member's client
// URL, CAIRN_CONSOLE_SCALE_PATH the folders to open from the root, comma
// separated as the tree names them (default "/"). It logs how long each
// listing takes to show and its per-folder counts to arrive, and then
// the second page of the last one. Skipped without the URL.
func TestConsoleAtScale(t *testing.T) {
	base := os.Getenv("CAIRN_CONSOLE_SCALE_URL")
	if base == "" {
		t.Skip("CAIRN_CONSOLE_SCALE_URL is not set: nothing to time")
	}
	b := newBrowser(t)
	listed := `document.querySelectorAll('#tree li[role=treeitem]').length > 0 && !document.getElementById('list-info').textContent.startsWith('loading')`
	counted := `[...document.querySelectorAll('#tree .count')].every(c => c.textContent !== '…')`
	timed := func(what string, act func()) {
		start := time.Now()
		act()
		b.waitJS(what, listed)
		shown := time.Since(start)
		b.waitJS(what+" counts", counted)
		t.Logf("%s: %d entries shown in %v, counts in %v (%s; %s since the page loaded)", what, eval[int](b, `document.querySelectorAll('#tree li[role=treeitem]').length`),
			shown.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), b.text("#list-info"),
			eval[string](b, `(() => { const e = performance.getEntriesByType('resource').filter(x => x.name.includes('/v3/')); return e.length + ' requests'; })()`))
	}
	timed("root", func() { b.do(chromedp.Navigate(base + "/ui/")) })
	path := os.Getenv("CAIRN_CONSOLE_SCALE_PATH")
	if path == "" {
		path = "/"
	}
	for _, name := range strings.Split(path, ",") {
		timed(name, func() { b.clickItem(name) })
	}
	if eval[bool](b, `document.getElementById('more').hidden`) {
		return
	}
	before := eval[int](b, `document.querySelectorAll('#tree li[role=treeitem]').length`)
	start := time.Now()
	b.click("#more")
	b.waitJS("the second page", fmt.Sprintf(`document.querySelectorAll('#tree li[role=treeitem]').length > %d`, before))
	t.Logf("second page: %v", time.Since(start).Round(time.Millisecond))
}
