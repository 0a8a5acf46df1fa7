package kube

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"
)

// TestControlPlaneLargeListAndRestart stores more objects than one
// RangeStream message holds (Cairn sends 1,000 keys per message), lists
// them from the key-value server whole and in pages, restarts
// kube-apiserver so that its watch cache is rebuilt from the server, and
// checks that an event (stored with a lease of --event-ttl) expires.
func TestControlPlaneLargeListAndRestart(t *testing.T) {
	const n = 1500
	c := startCluster(t, 1, plaintext)
	// ListFromCacheSnapshot off: exact-revision lists go to the server.
	args := []string{"--feature-gates=ListFromCacheSnapshot=false", "--event-ttl=5s"}
	a := startAPIServer(t, c, args...)
	ns := "big"
	a.retry(t, opTimeout, fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n", ns), "apply", "-f", "-")

	start := time.Now()
	createConfigMaps(t, a, ns, n)
	t.Logf("created %d config maps in %v", n, time.Since(start).Round(time.Millisecond))

	base := "/api/v1/namespaces/" + ns + "/configmaps"
	step := a.stepper(t)
	cached := rawList(t, step, base)
	if len(cached.Items) != n {
		t.Fatalf("consistent list: %d config maps, want %d", len(cached.Items), n)
	}
	rv := cached.Metadata.ResourceVersion
	before := listsFromEtcd(a.metrics(t))
	exact := rawList(t, step, base+"?resourceVersion="+rv+"&resourceVersionMatch=Exact")
	if len(exact.Items) != n {
		t.Errorf("exact list at %s: %d config maps, want %d", rv, len(exact.Items), n)
	}
	checkNames(t, "exact list", exact, n)

	var paged list
	cont := ""
	for pages := 1; ; pages++ {
		path := base + "?limit=700&resourceVersion=" + rv + "&resourceVersionMatch=Exact"
		if cont != "" {
			path = base + "?limit=700&continue=" + url.QueryEscape(cont)
		}
		l := rawList(t, step, path)
		paged.Items = append(paged.Items, l.Items...)
		cont = l.Metadata.Continue
		if cont == "" {
			if pages != 3 {
				t.Errorf("pages of 700 of %d: %d pages", n, pages)
			}
			break
		}
		if pages > 5 {
			t.Fatalf("more than 5 pages of 700 for %d objects", n)
		}
	}
	checkNames(t, "pages of 700", paged, n)
	after := listsFromEtcd(a.metrics(t))
	t.Logf("lists from etcd: %v with RangeStream, %v paginated", after["true"]-before["true"], after["false"]-before["false"])
	if after["true"] == before["true"] {
		t.Errorf("no list of the %d config maps used RangeStream", n)
	}

	// A new kube-apiserver builds its watch cache from the server's state.
	a.proc.stop()
	a = startAPIServer(t, c, args...)
	if l := rawList(t, a.stepper(t), base); len(l.Items) != n {
		t.Errorf("after kube-apiserver restart: %d config maps, want %d", len(l.Items), n)
	}
	if l := rawList(t, a.stepper(t), base+"?resourceVersion=0"); len(l.Items) != n {
		t.Errorf("after kube-apiserver restart, from the watch cache: %d config maps, want %d", len(l.Items), n)
	}

	// Events are stored with a lease of --event-ttl (plus a little for
	// lease reuse): the server must expire it and delete the event.
	event := fmt.Sprintf(`{"apiVersion":"v1","kind":"Event","metadata":{"name":"ttl-test","namespace":%q},
"involvedObject":{"kind":"ConfigMap","name":"cm-0","namespace":%q},"reason":"Test","message":"expires","type":"Normal"}`, ns, ns)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	code, body, err := a.do(ctx, "POST", "/api/v1/namespaces/"+ns+"/events", event)
	cancel()
	if err != nil || code != 201 {
		t.Fatalf("create event: %d %v %s", code, err, body)
	}
	created := time.Now()
	for {
		code, _ := a.mustGet(t, "/api/v1/namespaces/"+ns+"/events/ttl-test")
		if code == 404 {
			t.Logf("event expired after %v", time.Since(created).Round(time.Millisecond))
			break
		}
		if time.Since(created) > 30*time.Second {
			t.Fatalf("event with --event-ttl=5s still there after 30s (GET %d)", code)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// createConfigMaps creates cm-0 ... cm-<n-1> in ns, eight at a time.
func createConfigMaps(t *testing.T, a *apiServer, ns string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	next := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				body := fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm-%d"},"data":{"i":"%d"}}`, i, i)
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				code, resp, err := a.do(ctx, "POST", "/api/v1/namespaces/"+ns+"/configmaps", body)
				cancel()
				if err == nil && code != 201 {
					err = fmt.Errorf("%d %s", code, resp)
				}
				if err != nil {
					errs <- fmt.Errorf("create cm-%d: %w", i, err)
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// checkNames checks that l holds cm-0 ... cm-<n-1>, each once.
func checkNames(t *testing.T, what string, l list, n int) {
	t.Helper()
	seen := map[string]int{}
	for _, it := range l.Items {
		seen[it.Metadata.Name]++
	}
	for i := range n {
		name := fmt.Sprintf("cm-%d", i)
		if seen[name] != 1 {
			t.Errorf("%s: %s seen %d times", what, name, seen[name])
			return
		}
	}
	if len(l.Items) != n {
		t.Errorf("%s: %d items, want %d", what, len(l.Items), n)
	}
}
