package console

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/internal/testcluster"
)

const chromium = "/usr/bin/chromium"

// TestMain builds the server from the repository (this module cannot
// build ./cmd/cairn the way testcluster does from the main module) and
// hands it to testcluster.
func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	if os.Getenv("CAIRN_TESTCLUSTER_BINARY") == "" {
		dir, err := os.MkdirTemp("", "cairn-console-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		bin := filepath.Join(dir, "cairn")
		build := exec.Command("go", "build", "-o", bin, "./cmd/cairn")
		build.Dir = filepath.Join("..", "..")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "build cairn: %v\n", err)
			return 1
		}
		os.Setenv("CAIRN_TESTCLUSTER_BINARY", bin)
	}
	return m.Run()
}

// browser is one headless Chromium tab on the console of one member.
type browser struct {
	t       *testing.T
	ctx     context.Context
	shots   string // where screenshots go; "" for none
	dialogs chan string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	if _, err := os.Stat(chromium); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing in CI: scripts/console-test.sh installs Debian's chromium package", chromium)
		}
		t.Skipf("%s is missing: install Debian's chromium package (apt-get install -y chromium) or run scripts/console-test.sh", chromium)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox, // the tests run as root in CI
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 720),
		chromedp.Flag("force-prefers-reduced-motion", true),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(func() { cancelC(); cancelA() })
	b := &browser{t: t, ctx: ctx, dialogs: make(chan string, 16)}
	if dir := os.Getenv("CAIRN_CONSOLE_SCREENSHOTS"); dir != "" {
		if !filepath.IsAbs(dir) {
			dir = filepath.Join("..", "..", dir)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		b.shots = dir
	}
	// The first action starts the browser (with no timeout: it lives as
	// long as ctx).
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 720)); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	// A JavaScript dialog (alert, confirm) would mean a key or value ran
	// as script: the console itself uses none.
	go func() {
		for ev, err := range chromedp.Events(ctx, page.JavascriptDialogOpening) {
			if err != nil {
				return
			}
			b.dialogs <- ev.Message
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}
	}()
	return b
}

func (b *browser) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

// eval runs a JavaScript expression and returns its value.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitJS polls a JavaScript expression until it is true.
func (b *browser) waitJS(what, expr string) {
	b.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+expr+")"))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			state, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`(document.getElementById('error').hidden ? '' : 'error bar: ' + document.getElementById('error').textContent + '\n') + 'view: ' + document.querySelector('.view:not([hidden])').innerText.slice(0, 3000)`))
			b.t.Fatalf("timed out waiting for %s (%s; err %v) %s", what, expr, err, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (b *browser) click(sel string) {
	b.t.Helper()
	b.do(chromedp.Click(chromedp.CSS(sel)))
}

// clickItem clicks the tree entry whose shown name is name.
func (b *browser) clickItem(name string) {
	b.t.Helper()
	b.waitJS("tree entry "+name, treeItem(name))
	eval[bool](b, "("+treeItem(name)+").click(), true")
}

func treeItem(name string) string {
	q, _ := json.Marshal(name)
	return `[...document.querySelectorAll('#tree li[role=treeitem]')].find(li => li.querySelector('.name').textContent === ` + string(q) + `)`
}

// setValue replaces an input's text with v and fires its input and
// change events, as typing does.
func (b *browser) setValue(sel, v string) {
	b.t.Helper()
	b.do(chromedp.SetValue(chromedp.CSS(sel), v))
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	q, _ := json.Marshal(sel)
	return eval[string](b, `document.querySelector(`+string(q)+`).textContent`)
}

// screenshot checks the layout holds at 1280×720 (nothing wider than
// the window) and, with CAIRN_CONSOLE_SCREENSHOTS, saves the view.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	if w := eval[int](b, `document.documentElement.scrollWidth`); w > 1280 {
		b.t.Errorf("%s: the page is %dpx wide at a 1280px window", name, w)
	}
	if b.shots == "" {
		return
	}
	time.Sleep(300 * time.Millisecond) // let the last row's flash fade
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.shots, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// colorScheme makes the page see the system's preference as scheme.
func (b *browser) colorScheme(scheme string) {
	b.t.Helper()
	_, err := chromedp.Call(b.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
	})
	if err != nil {
		b.t.Fatal(err)
	}
}

func (b *browser) noDialogs() {
	b.t.Helper()
	select {
	case m := <-b.dialogs:
		b.t.Fatalf("a JavaScript dialog opened (%q): something ran as script", m)
	default:
	}
}

func put(t *testing.T, cli *clientv3.Client, k, v string, opts ...clientv3.OpOption) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := cli.Put(ctx, k, v, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return r.Header.Revision
}

func get(t *testing.T, cli *clientv3.Client, k string, opts ...clientv3.OpOption) *clientv3.GetResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := cli.Get(ctx, k, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestConsoleInABrowser runs the console's scripted sessions against one
// three-member cluster, in order: each builds on the keys of the last.
func TestConsoleInABrowser(t *testing.T) {
	b := newBrowser(t)
	c := testcluster.New(t, testcluster.Config{Size: 3, Flags: []string{"--console=true"}})
	c.WaitLeader(t)
	cli := c.Client(t)
	ui := c.Members[0].ClientURL + "/ui/"

	// 10,000 keys: 125 folders of 80 keys, in transactions of 100 puts.
	ctx := context.Background()
	var ops []clientv3.Op
	for d := 0; d < 125; d++ {
		for k := 0; k < 80; k++ {
			ops = append(ops, clientv3.OpPut(fmt.Sprintf("/tree/dir-%03d/key-%03d", d, k), fmt.Sprintf("value %d/%d", d, k)))
			if len(ops) == 100 {
				if _, err := cli.Txn(ctx).Then(ops...).Commit(); err != nil {
					t.Fatal(err)
				}
				ops = ops[:0]
			}
		}
	}
	const app = `{"name":"web","replicas":3,"image":"nginx:1.27","env":{"DEBUG":false,"LEVEL":"info"},"ports":[80,443]}`
	firstRev := put(t, cli, "/cfg/app.json", app)
	put(t, cli, "/cfg/pod.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web # the name\n  labels:\n    app: web\n")

	t.Run("PageHelpers", func(t *testing.T) {
		b.t = t
		b.do(chromedp.Navigate(ui))
		b.waitJS("the page", `window.cairnConsole`)
		for expr, want := range map[string]string{
			`cairnConsole.detect('{"a": 1}')`:          "json",
			`cairnConsole.detect('[1, 2]')`:            "json",
			`cairnConsole.detect('a: 1\nb:\n  - c\n')`: "yaml",
			`cairnConsole.detect('hello world')`:       "text",
			`cairnConsole.detect('{not json')`:         "text",
			`cairnConsole.detect('a\u0000b')`:          "binary",
			`cairnConsole.lineDiff('a b c d'.split(' '), 'a x c d e'.split(' ')).map(o => o.join('')).join(',')`: " a,-b,+x, c, d,+e",
			`cairnConsole.b64(cairnConsole.unb64('AP8Q'))`:                                                       "AP8Q",
		} {
			if got := eval[string](b, expr); got != want {
				t.Errorf("%s = %q, want %q", expr, got, want)
			}
		}
	})

	t.Run("BrowseTreeOf10000Keys", func(t *testing.T) {
		b.t = t
		start := time.Now()
		b.do(chromedp.Navigate(ui))
		b.waitJS("the root listing", `document.getElementById('list-info').textContent.includes('10002 keys')`)
		b.clickItem("/")
		b.clickItem("tree/")
		b.waitJS("the first page of folders", `document.querySelectorAll('#tree li[data-kind=folder]').length === 100 && !document.getElementById('more').hidden`)
		b.waitJS("the folder counts", `[...document.querySelectorAll('#tree .count')].every(c => c.textContent === '80')`)
		b.screenshot("keys")
		// Dark and light follow the system.
		b.colorScheme("dark")
		b.waitJS("the dark theme", `getComputedStyle(document.body).backgroundColor === 'rgb(21, 24, 30)'`)
		b.screenshot("keys-dark")
		b.colorScheme("light")
		b.waitJS("the light theme", `getComputedStyle(document.body).backgroundColor === 'rgb(255, 255, 255)'`)
		b.click("#more")
		b.waitJS("every folder", `document.querySelectorAll('#tree li[data-kind=folder]').length === 125`)
		t.Logf("10,000 keys: root to the last of 125 folders in %v", time.Since(start))
		// Keyboard: Home, down twice, Enter opens dir-002/, End and Enter
		// open its last key, Left goes back up.
		b.do(chromedp.Focus(chromedp.CSS("#tree")), chromedp.KeyEvent(kb.Home), chromedp.KeyEvent(kb.ArrowDown), chromedp.KeyEvent(kb.ArrowDown), chromedp.KeyEvent(kb.Enter))
		b.waitJS("dir-002 by keyboard", `document.getElementById('crumbs').textContent.includes('dir-002') && document.querySelectorAll('#tree li[data-kind=key]').length === 80 && document.activeElement === document.querySelector('#tree li')`)
		b.do(chromedp.KeyEvent(kb.End), chromedp.KeyEvent(kb.Enter))
		b.waitJS("the last key by keyboard", `document.getElementById('d-key').textContent === '/tree/dir-002/key-079' && document.getElementById('d-value').textContent === 'value 2/79'`)
		b.do(chromedp.KeyEvent(kb.ArrowLeft))
		b.waitJS("back up by keyboard", `document.querySelectorAll('#tree li[data-kind=folder]').length === 100 && document.activeElement === document.querySelector('#tree li')`)
		// Prefix search: a flat list.
		b.setValue("#search", "/tree/dir-124")
		b.waitJS("the search results", `document.getElementById('list-info').textContent.startsWith('80 keys') && document.querySelectorAll('#tree li[data-kind=key]').length === 80`)
	})

	t.Run("OpenJSONValueAndEditIt", func(t *testing.T) {
		b.t = t
		b.setValue("#search", "/cfg/")
		b.clickItem("/cfg/app.json")
		b.waitJS("the JSON viewer", `document.getElementById('d-kind').textContent.startsWith('JSON') && document.querySelectorAll('#d-value .tok-k').length >= 5`)
		if got := b.text("#d-value"); !strings.Contains(got, `"replicas": 3`) {
			t.Fatalf("pretty JSON: %q", got)
		}
		if got := b.text("#d-version"); got != "1" {
			t.Errorf("version %q, want 1", got)
		}
		b.screenshot("value-json")
		b.click("#edit-btn")
		edited := strings.Replace(app, `"replicas":3`, `"replicas":4`, 1)
		b.setValue("#edit-text", edited)
		b.click("#save-btn")
		b.waitJS("the saved version", `document.getElementById('d-version').textContent === '2'`)
		if got := string(get(t, cli, "/cfg/app.json").Kvs[0].Value); got != edited {
			t.Fatalf("stored %q, want %q", got, edited)
		}
		b.click("[data-mode=hex]")
		b.waitJS("the hex view", `document.getElementById('d-value').textContent.startsWith('00000000  7b 22 6e 61')`)
		b.click("[data-mode=auto]")
		b.clickItem("/cfg/pod.yaml")
		b.waitJS("the YAML viewer", `document.getElementById('d-kind').textContent.startsWith('YAML') && [...document.querySelectorAll('#d-value .tok-k')].map(s => s.textContent).join() === 'apiVersion,kind,metadata,name,labels,app' && document.querySelector('#d-value .tok-c').textContent === ' # the name'`)
		b.clickItem("/cfg/app.json")
		b.waitJS("the JSON viewer again", `document.getElementById('d-kind').textContent.startsWith('JSON')`)
	})

	t.Run("ConflictWhenAnotherClientChangedItFirst", func(t *testing.T) {
		b.t = t
		b.click("#edit-btn")
		mine := strings.Replace(app, `"replicas":3`, `"replicas":5`, 1)
		b.setValue("#edit-text", mine)
		theirs := strings.Replace(app, `"nginx:1.27"`, `"nginx:1.28"`, 1)
		put(t, cli, "/cfg/app.json", theirs) // another client, after the page read the key
		b.click("#save-btn")
		b.waitJS("the conflict", `!document.getElementById('conflict').hidden && document.getElementById('editor').hidden`)
		if got := b.text("#conflict-theirs"); got != theirs {
			t.Errorf("theirs shown as %q, want %q", got, theirs)
		}
		if got := b.text("#conflict-mine"); got != mine {
			t.Errorf("mine shown as %q, want %q", got, mine)
		}
		if got := string(get(t, cli, "/cfg/app.json").Kvs[0].Value); got != theirs {
			t.Fatalf("the conflicting save wrote: %q", got)
		}
		b.waitJS("the conflict diff", `document.querySelectorAll('#conflict-diff .add').length > 0 && document.querySelectorAll('#conflict-diff .del').length > 0`)
		b.screenshot("conflict")
		b.click("#overwrite-btn")
		b.waitJS("mine saved", `document.getElementById('conflict').hidden && document.getElementById('d-version').textContent === '4'`)
		if got := string(get(t, cli, "/cfg/app.json").Kvs[0].Value); got != mine {
			t.Fatalf("after overwrite: %q", got)
		}
	})

	t.Run("HistoryAndDiff", func(t *testing.T) {
		b.t = t
		b.click("#hist-btn")
		b.waitJS("four versions", `document.querySelectorAll('#hist-table tbody tr').length === 4 && document.getElementById('hist-msg').textContent.includes('Complete history')`)
		// JSON values are compared pretty-printed: one line per change.
		b.waitJS("a diff between the two newest", `[...document.querySelectorAll('#hist-diff .add')].map(s => s.textContent).join('|') === '+   "replicas": 5,|+   "image": "nginx:1.27",' && document.querySelectorAll('#hist-diff .del').length === 2`)
		// Diff from the first version to the newest.
		b.click(`#hist-table tbody tr:last-child input[name=ha]`)
		b.waitJS("the diff from version 1", `[...document.querySelectorAll('#hist-diff .del')].map(s => s.textContent).join('|') === '-   "replicas": 3,'`)
		b.screenshot("history")
	})

	t.Run("ViewTheStoreAtARevision", func(t *testing.T) {
		b.t = t
		b.setValue("#rev-input", fmt.Sprint(firstRev))
		b.click("#rev-go")
		b.waitJS("the value at that revision", `!document.getElementById('banner').hidden && document.getElementById('d-version').textContent === '1' && document.getElementById('edit-btn').disabled`)
		if got := b.text("#d-value"); !strings.Contains(got, `"replicas": 3`) || strings.Contains(got, "1.28") {
			t.Errorf("value at revision %d: %q", firstRev, got)
		}
		b.waitJS("pod.yaml absent then", `document.getElementById('list-info').textContent.startsWith('1 key')`)
		b.click("#rev-live")
		b.waitJS("live again", `document.getElementById('banner').hidden && document.getElementById('d-version').textContent === '4'`)
	})

	t.Run("DeletePrefixWithConfirmation", func(t *testing.T) {
		b.t = t
		b.setValue("#search", "/tree/dir-124/")
		b.waitJS("the prefix listing", `document.getElementById('list-info').textContent.startsWith('80 keys')`)
		b.click("#del-prefix")
		b.waitJS("the confirmation", `document.getElementById('confirm').open`)
		if got := b.text("#confirm-title"); got != "Delete 80 keys?" {
			t.Errorf("confirmation %q", got)
		}
		b.screenshot("delete-prefix")
		b.click("#confirm-ok")
		b.waitJS("the deletion", `document.getElementById('list-info').textContent.startsWith('Deleted 80 keys')`)
		if n := get(t, cli, "/tree/dir-124/", clientv3.WithPrefix(), clientv3.WithCountOnly()).Count; n != 0 {
			t.Fatalf("%d keys left under the prefix", n)
		}
		if n := get(t, cli, "/tree/", clientv3.WithPrefix(), clientv3.WithCountOnly()).Count; n != 9920 {
			t.Fatalf("%d keys left under /tree/, want 9920", n)
		}
	})

	t.Run("CreateAndDeleteAKey", func(t *testing.T) {
		b.t = t
		b.setValue("#search", "/new/")
		b.waitJS("an empty prefix", `document.getElementById('list-info').textContent.startsWith('0 keys')`)
		b.click("#new-key")
		b.waitJS("the create dialog", `document.getElementById('create').open && document.getElementById('create-key').value === '/new/'`)
		b.setValue("#create-key", "/new/one")
		b.setValue("#create-value", "first")
		b.click("#create-ok")
		b.waitJS("the new key open", `!document.getElementById('create').open && document.getElementById('d-key').textContent === '/new/one' && document.getElementById('d-value').textContent === 'first'`)
		if got := string(get(t, cli, "/new/one").Kvs[0].Value); got != "first" {
			t.Fatalf("created %q", got)
		}
		// Creating it again writes nothing.
		b.click("#new-key")
		b.setValue("#create-key", "/new/one")
		b.setValue("#create-value", "second")
		b.click("#create-ok")
		b.waitJS("the refusal", `document.getElementById('create').open && document.getElementById('create-msg').textContent.includes('already exists')`)
		b.click("#create-cancel")
		if got := string(get(t, cli, "/new/one").Kvs[0].Value); got != "first" {
			t.Fatalf("the second create wrote %q", got)
		}
		// A delete of a key changed meanwhile is refused...
		put(t, cli, "/new/one", "changed")
		b.click("#del-btn")
		b.waitJS("the confirmation", `document.getElementById('confirm').open && document.getElementById('confirm-text').textContent.includes('/new/one')`)
		b.click("#confirm-ok")
		b.waitJS("the conflict", `!document.getElementById('conflict').hidden && document.getElementById('conflict-theirs').textContent === 'changed'`)
		if n := len(get(t, cli, "/new/one").Kvs); n != 1 {
			t.Fatal("the changed key was deleted")
		}
		// ...and goes through once the page has seen the change.
		b.click("#reload-btn")
		b.waitJS("the reload", `document.getElementById('d-value').textContent === 'changed'`)
		b.click("#del-btn")
		b.waitJS("the confirmation", `document.getElementById('confirm').open`)
		b.click("#confirm-ok")
		b.waitJS("the deletion", `document.getElementById('d-note').textContent.startsWith('Deleted at revision') && document.getElementById('list-info').textContent.startsWith('0 keys')`)
		if n := len(get(t, cli, "/new/one").Kvs); n != 0 {
			t.Fatal("the key survived")
		}
	})

	t.Run("WatchEventsWhileAnotherClientWrites", func(t *testing.T) {
		b.t = t
		b.click("#tab-watch")
		b.setValue("#watch-prefix", "/live/")
		b.click("#watch-start")
		b.waitJS("the watch", `document.getElementById('watch-state').textContent.startsWith('Watching')`)
		for i := 0; i < 5; i++ {
			put(t, cli, fmt.Sprintf("/live/k%d", i), fmt.Sprintf("v%d", i))
		}
		put(t, cli, "/elsewhere", "not watched")
		put(t, cli, "/live/k0", "v0 changed\nsecond line")
		b.waitJS("six events", `document.querySelectorAll('#watch-table tbody tr[data-rev]').length === 6`)
		b.click("#watch-pause")
		b.waitJS("paused", `document.getElementById('watch-state').textContent.startsWith('Paused')`)
		for i := 5; i < 8; i++ {
			put(t, cli, fmt.Sprintf("/live/k%d", i), fmt.Sprintf("v%d", i))
		}
		if _, err := cli.Delete(ctx, "/live/k1"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		if n := eval[int](b, `document.querySelectorAll('#watch-table tbody tr[data-rev]').length`); n != 6 {
			t.Errorf("%d events while paused, want 6", n)
		}
		b.click("#watch-resume")
		b.waitJS("the missed events, once each", `(() => { const r = [...document.querySelectorAll('#watch-table tbody tr[data-rev]')].map(t => t.dataset.rev); return r.length === 10 && new Set(r).size === 10; })()`)
		b.waitJS("the delete", `document.querySelector('#watch-table tbody tr[data-rev] .t-delete')?.textContent === 'DELETE'`)
		// The value diff of the changed key.
		eval[bool](b, `[...document.querySelectorAll('#watch-table tbody tr[data-rev]')].find(r => r.textContent.includes('v0 changed')).querySelector('button').click(), true`)
		b.waitJS("the event's diff", `[...document.querySelectorAll('#watch-table pre.diff .add')].some(s => s.textContent === '+ v0 changed')`)
		b.screenshot("watch")
		b.click("#watch-pause")
	})

	t.Run("EscapingRendersAsText", func(t *testing.T) {
		b.t = t
		big := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
		put(t, cli, "/esc/<script>alert('key')</script>", `<img src=x onerror="alert('value')"><script>alert(1)</script>`)
		put(t, cli, "/esc/nul\x00byte", "a\x00b")
		put(t, cli, "/esc/bad\xff\xfeutf8", "\xc3\x28 invalid")
		put(t, cli, "/esc/big", big)
		b.click("#tab-keys")
		b.setValue("#search", "/esc/")
		b.waitJS("the escaping keys", `document.querySelectorAll('#tree li[data-kind=key]').length === 4`)
		for _, name := range []string{`/esc/<script>alert('key')</script>`, `/esc/nul\x00byte`, `/esc/bad\xff\xfeutf8`} {
			b.waitJS("key shown as "+name, treeItem(name))
		}
		b.waitJS("escapes marked", `document.querySelectorAll('#tree .esc').length === 3`)
		b.clickItem(`/esc/<script>alert('key')</script>`)
		b.waitJS("the HTML value as text", `document.getElementById('d-value').textContent.startsWith('<img src=x') && !document.querySelector('#detail img, #detail script')`)
		b.screenshot("escaping")
		b.clickItem(`/esc/nul\x00byte`)
		b.waitJS("the NUL value as hex", `document.getElementById('d-kind').textContent === 'binary, 3 B' && document.getElementById('d-value').textContent.includes('61 00 62')`)
		b.clickItem(`/esc/bad\xff\xfeutf8`)
		b.waitJS("the invalid UTF-8 value as hex", `document.getElementById('d-kind').textContent.startsWith('binary') && document.getElementById('d-value').textContent.includes('c3 28')`)
		b.click("[data-mode=text]")
		b.waitJS("the invalid UTF-8 value as escaped text", `document.querySelector('#d-value .esc')?.textContent === '\\xc3'`)
		b.click("[data-mode=auto]")
		b.clickItem("/esc/big")
		b.waitJS("the 1 MiB value", `document.getElementById('d-value').textContent.length === 1048576 && document.getElementById('d-kind').textContent === 'text, 1.0 MiB'`)
		if eval[bool](b, `document.querySelectorAll('img, #tree script, #detail script').length > 0`) {
			t.Error("a key or value became an element")
		}
		b.noDialogs()
	})

	t.Run("LeaseTTLAndRevoke", func(t *testing.T) {
		b.t = t
		lr, err := cli.Grant(ctx, 300)
		if err != nil {
			t.Fatal(err)
		}
		put(t, cli, "/esc/leased", "x", clientv3.WithLease(lr.ID))
		b.setValue("#search", "/esc/lea")
		b.clickItem("/esc/leased")
		b.waitJS("the lease TTL", `/^\d+s of 300s$/.test(document.getElementById('d-ttl')?.textContent)`)
		b.click("#tab-leases")
		row := fmt.Sprintf(`document.querySelector('#leases tr[data-lease="%d"]')`, lr.ID)
		b.waitJS("the lease", row+`?.textContent.includes('/esc/leased')`)
		b.screenshot("leases")
		eval[bool](b, row+`.querySelector('button').click(), true`)
		b.waitJS("the confirmation", `document.getElementById('confirm').open && document.getElementById('confirm-text').textContent.includes('1 key')`)
		b.click("#confirm-ok")
		b.waitJS("the lease gone", `!`+row)
		if n := len(get(t, cli, "/esc/leased").Kvs); n != 0 {
			t.Errorf("the leased key survived the revoke")
		}
	})

	t.Run("UsersAndRoles", func(t *testing.T) {
		b.t = t
		b.click("#tab-access")
		b.waitJS("auth status", `document.getElementById('auth-state').textContent.includes('disabled')`)
		b.setValue("#role-name", "reader")
		b.click("#role-add button")
		b.setValue("#perm-role", "reader")
		b.setValue("#perm-prefix", "/cfg/")
		b.click("#perm-add button")
		b.setValue("#user-name", "alice")
		b.setValue("#user-pass", "secret")
		b.click("#user-add button")
		b.waitJS("alice", `[...document.querySelectorAll('#users td')].some(td => td.textContent === 'alice')`)
		eval[bool](b, `(() => { const tr = [...document.querySelectorAll('#users tr')].find(r => r.cells[0]?.textContent === 'alice'); tr.querySelector('input').value = 'reader'; tr.querySelector('button:last-child').click(); return true })()`)
		b.waitJS("the grant", `[...document.querySelectorAll('#users tr')].find(r => r.cells[0]?.textContent === 'alice')?.cells[1].textContent.includes('reader')`)
		b.waitJS("the permission", `[...document.querySelectorAll('#roles tr')].some(r => r.textContent.includes('READ prefix /cfg/'))`)
		ur, err := cli.UserGet(ctx, "alice")
		if err != nil || len(ur.Roles) != 1 || ur.Roles[0] != "reader" {
			t.Fatalf("alice: %v %v", ur, err)
		}
		// Revoke the permission again, after the confirmation.
		eval[bool](b, `[...document.querySelectorAll('#roles tr')].find(r => r.textContent.includes('READ prefix /cfg/')).querySelector('button').click(), true`)
		b.waitJS("the confirmation", `document.getElementById('confirm').open && document.getElementById('confirm-text').textContent.includes('from role reader')`)
		b.click("#confirm-ok")
		b.waitJS("the permission gone", `![...document.querySelectorAll('#roles tr')].some(r => r.textContent.includes('READ prefix'))`)
		if rr, err := cli.RoleGet(ctx, "reader"); err != nil || len(rr.Perm) != 0 {
			t.Fatalf("reader: %v %v", rr, err)
		}
	})

	t.Run("MemberGoesUnhealthyWhenKilled", func(t *testing.T) {
		b.t = t
		b.click("#tab-cluster")
		b.waitJS("three healthy members and a leader", `document.querySelectorAll('#members tr[data-health=healthy]').length === 3 && [...document.querySelectorAll('#members td')].filter(td => td.textContent === 'leader').length === 1`)
		b.waitJS("no alarms", `document.getElementById('alarms').textContent === 'No alarms.'`)
		// Writes for the live charts: puts until the charts show them
		// (at most 2,000, or 25 seconds).
		stop, done := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			end := time.Now().Add(25 * time.Second)
			for i := 0; i < 2000 && time.Now().Before(end); i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := cli.Put(ctx, fmt.Sprintf("/load/k%d", i%20), "x"); err != nil {
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
		}()
		b.waitJS("the live charts", `Number(document.getElementById('c-writes').textContent) > 5 && document.getElementById('c-db').textContent.endsWith('MiB') && /ms$/.test(document.getElementById('c-fsync').textContent)`)
		close(stop)
		<-done
		b.screenshot("cluster")
		// A learner that never started: its role, and no status.
		lr, err := cli.MemberAddAsLearner(ctx, []string{"http://127.0.0.1:1"})
		if err != nil {
			t.Fatal(err)
		}
		row := fmt.Sprintf(`document.querySelector('#members tr[data-member="%d"]')`, lr.Member.ID)
		b.waitJS("the learner", row+`?.cells[2].textContent === 'learner' && `+row+`.cells[0].textContent === '(not started)' && `+row+`.dataset.health === 'unreachable'`)
		if _, err := cli.MemberRemove(ctx, lr.Member.ID); err != nil {
			t.Fatal(err)
		}
		b.waitJS("the learner gone", `!`+row)
		victim := c.Members[2]
		id := victim.ID()
		victim.Kill()
		b.waitJS("the killed member unreachable", fmt.Sprintf(`document.querySelector('#members tr[data-member="%d"]')?.dataset.health === 'unreachable' && document.querySelectorAll('#members tr[data-health=healthy]').length === 2`, id))
		b.screenshot("cluster-unhealthy")

	})

	t.Run("HistoryStopsAtCompaction", func(t *testing.T) {
		b.t = t
		cur := get(t, cli, "/cfg/app.json").Kvs[0]
		if _, err := cli.Compact(ctx, cur.ModRevision); err != nil {
			t.Fatal(err)
		}
		b.click("#tab-keys")
		b.setValue("#search", "/cfg/")
		b.clickItem("/cfg/app.json")
		b.waitJS("the key", `document.getElementById('d-version').textContent === '4'`)
		b.click("#hist-btn")
		b.waitJS("the compaction message", `document.getElementById('hist-msg').textContent.includes('compacted') && document.querySelectorAll('#hist-table tbody tr').length === 1`)
		// The store at a compacted revision is refused, and said so.
		b.setValue("#rev-input", fmt.Sprint(firstRev))
		b.click("#rev-go")
		b.waitJS("the refusal", fmt.Sprintf(`document.getElementById('error').textContent.startsWith('Revision %d was compacted away')`, firstRev))
		b.click("#error")
		b.click("#rev-live")
		b.waitJS("live again", `document.getElementById('banner').hidden && document.getElementById('d-version').textContent === '4'`)
		b.noDialogs()
	})

	// Last, as it turns auth on for good: the page logs in, keeps the
	// token in the tab (no cookie) and gets the user's permissions.
	t.Run("LogInWithAuthOn", func(t *testing.T) {
		b.t = t
		for _, step := range []func() error{
			func() error { _, err := cli.RoleAdd(ctx, "root"); return err },
			func() error { _, err := cli.UserAdd(ctx, "root", "rootpw"); return err },
			func() error { _, err := cli.UserGrantRole(ctx, "root", "root"); return err },
			func() error { _, err := cli.RoleAdd(ctx, "cfgreader"); return err },
			func() error {
				_, err := cli.RoleGrantPermission(ctx, "cfgreader", "/cfg/", clientv3.GetPrefixRangeEnd("/cfg/"), clientv3.PermissionType(clientv3.PermRead))
				return err
			},
			func() error { _, err := cli.UserAdd(ctx, "bob", "bobpw"); return err },
			func() error { _, err := cli.UserGrantRole(ctx, "bob", "cfgreader"); return err },
			func() error { _, err := cli.AuthEnable(ctx); return err },
		} {
			if err := step(); err != nil {
				t.Fatal(err)
			}
		}
		c.SetCredentials("root", "rootpw")
		b.do(chromedp.Navigate(ui))
		b.waitJS("the login dialog", `document.getElementById('login').open`)
		b.setValue("#login-user", "bob")
		b.setValue("#login-pass", "wrong")
		b.click("#login-ok")
		b.waitJS("the refusal", `document.getElementById('login').open && document.getElementById('login-msg').textContent.includes('authentication failed')`)
		b.setValue("#login-pass", "bobpw")
		b.screenshot("login")
		b.click("#login-ok")
		// bob may read /cfg/ only: the whole-store listing is refused.
		b.waitJS("the permission error", `!document.getElementById('login').open && document.getElementById('error').textContent.includes('permission denied')`)
		if got := b.text("#whoami"); got != "user bob" {
			t.Errorf("whoami %q", got)
		}
		if tok := eval[string](b, `sessionStorage.getItem('cairn.token') || ''`); tok == "" {
			t.Error("no token in sessionStorage")
		}
		if ck := eval[string](b, `document.cookie`); ck != "" {
			t.Errorf("the page has cookies: %q", ck)
		}
		b.click("#error")
		b.setValue("#search", "/cfg/")
		b.waitJS("bob's keys", `document.getElementById('list-info').textContent.startsWith('2 keys')`)
		b.clickItem("/cfg/app.json")
		b.waitJS("the value", `document.getElementById('d-kind').textContent.startsWith('JSON')`)
		b.click("#edit-btn")
		b.setValue("#edit-text", `{"by":"bob"}`)
		b.click("#save-btn")
		b.waitJS("the write refused", `!document.getElementById('error').hidden && document.getElementById('error').textContent.includes('permission denied')`)
		if got := string(get(t, c.Client(t), "/cfg/app.json").Kvs[0].Value); strings.Contains(got, "bob") {
			t.Fatalf("bob wrote %q", got)
		}
		// Watch as bob: his prefix streams, another is refused.
		b.click("#error")
		b.click("#tab-watch")
		b.click("#watch-clear")
		b.setValue("#watch-prefix", "/cfg/")
		b.click("#watch-start")
		b.waitJS("bob's watch", `document.getElementById('watch-state').textContent.startsWith('Watching')`)
		root := c.Client(t)
		put(t, root, "/cfg/by-root", "hello bob")
		b.waitJS("the event", `[...document.querySelectorAll('#watch-table tbody tr[data-rev]')].some(r => r.textContent.includes('/cfg/by-root'))`)
		b.click("#watch-pause")
		b.setValue("#watch-prefix", "/tree/")
		b.click("#watch-start")
		b.waitJS("the refused watch", `document.getElementById('watch-state').textContent.includes('permission denied')`)
		// The cluster view as bob: the status relay carries bob's token.
		b.click("#tab-cluster")
		b.waitJS("the cluster as bob", `document.querySelectorAll('#members tr[data-health=healthy]').length === 2 && document.querySelectorAll('#members tr[data-health=unreachable]').length === 1 && !document.getElementById('login').open`)
		b.noDialogs()
	})
}
