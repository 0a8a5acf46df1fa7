package kube

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// writer creates config maps w-0, w-1, ... one after another until
// stopped, through the API server, remembering which creates succeeded.
type writer struct {
	stopCh chan struct{}
	done   chan struct{}

	mu        sync.Mutex
	created   []string // answered 201
	attempted int
}

func startWriter(t *testing.T, a *apiServer, ns string) *writer {
	t.Helper()
	w := &writer{stopCh: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for i := 0; ; i++ {
			select {
			case <-w.stopCh:
				return
			default:
			}
			name := fmt.Sprintf("w-%d", i)
			body := fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":%q}}`, name)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			code, _, err := a.do(ctx, "POST", "/api/v1/namespaces/"+ns+"/configmaps", body)
			cancel()
			w.mu.Lock()
			w.attempted++
			if err == nil && code == 201 {
				w.created = append(w.created, name)
			}
			w.mu.Unlock()
			time.Sleep(20 * time.Millisecond)
		}
	}()
	t.Cleanup(func() { w.stop() })
	return w
}

// stop stops the writer and returns the names it created.
func (w *writer) stop() []string {
	select {
	case <-w.stopCh:
	default:
		close(w.stopCh)
	}
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.created)
}

// checkWritesSurvived checks, after a failover, that every config map the
// writer was told it created exists, and that the watch saw exactly the
// w-* config maps that exist, each ADDED once: no acknowledged write lost,
// no event lost or repeated when kube-apiserver's watch moved to another
// member.
func checkWritesSurvived(t *testing.T, a *apiServer, ns string, created []string, w *kubeWatch) {
	t.Helper()
	l := rawList(t, a.stepper(t), "/api/v1/namespaces/"+ns+"/configmaps")
	exists := map[string]bool{}
	for _, it := range l.Items {
		if strings.HasPrefix(it.Metadata.Name, "w-") {
			exists[it.Metadata.Name] = true
		}
	}
	for _, name := range created {
		if !exists[name] {
			t.Errorf("config map %s was created (201) but is not listed", name)
		}
	}
	t.Logf("writer: %d creates acknowledged, %d config maps exist", len(created), len(exists))

	added := map[string]int{}
	deadline := time.After(opTimeout)
	for len(added) < len(exists) {
		select {
		case ev, ok := <-w.events:
			if !ok {
				t.Fatalf("config map watch ended after %d of %d w-* ADDED events; stderr: %s", len(added), len(exists), w.stderr.String())
			}
			name := ev.Object.Metadata.Name
			if !strings.HasPrefix(name, "w-") {
				continue
			}
			if ev.Type != "ADDED" {
				t.Errorf("watch: %s %s, want only ADDED", ev.Type, name)
				continue
			}
			added[name]++
			if added[name] > 1 {
				t.Errorf("watch: ADDED %s %d times", name, added[name])
			}
			if !exists[name] {
				t.Errorf("watch: ADDED %s, which is not listed", name)
			}
		case <-deadline:
			var missing []string
			for name := range exists {
				if added[name] == 0 {
					missing = append(missing, name)
				}
			}
			slices.Sort(missing)
			t.Fatalf("watch saw %d of %d w-* config maps after %v; missing %v", len(added), len(exists), opTimeout, missing)
		}
	}
}
