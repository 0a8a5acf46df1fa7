package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
)

// churnLabel is what the watch phase's patches set on every pod; the
// watchers count the MODIFIED events that carry it.
const churnLabel = "kubeload-churn"

// watch starts the informer-style watchers, patches a label on every pod,
// and waits until each watcher has seen each change it should.
func (l *load) watch(ctx context.Context) error {
	wctx, cancel := context.WithCancel(ctx)
	nss := make([]string, l.sz.watchers)
	for i := range nss {
		if i%30 != 29 {
			nss[i] = l.nsNames[i%len(l.nsNames)]
		}
	}
	var got atomic.Int64
	var readers sync.WaitGroup
	// Deferred in this order: stop the watches, then wait for the readers.
	defer readers.Wait()
	defer cancel()
	// Start them all (a list, then a watch from its resourceVersion)
	// before the changes; each keeps reading until the phase ends.
	if err := l.pool(wctx, len(nss), func(wctx context.Context, i int) {
		rv, ok := l.informerList(wctx, nss[i])
		if !ok {
			return
		}
		if w, ok := l.startWatch(wctx, nss[i], rv); ok {
			readers.Go(func() { l.readWatch(wctx, nss[i], w, &got) })
		}
	}); err != nil {
		return err
	}

	var expected int64
	for _, ns := range nss {
		if ns == "" {
			expected += int64(len(l.nsNames) * l.sz.pods)
		} else {
			expected += int64(l.sz.pods)
		}
	}
	l.res.WatchExpected = expected
	patch := fmt.Appendf(nil, `{"metadata":{"labels":{%q:"1"}}}`, churnLabel)
	if err := l.pool(ctx, len(l.nsNames)*l.sz.pods, func(ctx context.Context, i int) {
		ns, j := l.nsNames[i/l.sz.pods], i%l.sz.pods
		_ = l.rec.do(ctx, "PATCH pods", func(ctx context.Context) error {
			_, err := l.cs.CoreV1().Pods(ns).Patch(ctx, podName(j), types.MergePatchType, patch, metav1.PatchOptions{})
			return err
		})
	}); err != nil {
		return err
	}
	churned := time.Now()
	for got.Load() < expected && time.Since(churned) < l.sz.watchWait && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	l.res.WatchLag = time.Since(churned).Seconds()
	l.res.WatchEvents = got.Load()
	return ctx.Err()
}

// informerList is an informer's initial list: resourceVersion "0" (from
// the watch cache), in pages of 500.
func (l *load) informerList(ctx context.Context, ns string) (string, bool) {
	var rv string
	opts := metav1.ListOptions{ResourceVersion: "0", Limit: 500}
	for {
		var next string
		if l.rec.do(ctx, "LIST informer rv=0", func(ctx context.Context) error {
			var err error
			next, rv, err = l.listPage(ctx, "pods", ns, opts)
			return err
		}) != nil {
			return "", false
		}
		if next == "" {
			return rv, true
		}
		opts = metav1.ListOptions{Limit: 500, Continue: next}
	}
}

// startWatch opens a watch on the pods of ns from rv, with bookmarks, as
// a reflector does. The time to the response headers is recorded.
func (l *load) startWatch(ctx context.Context, ns, rv string) (watch.Interface, bool) {
	start := time.Now()
	w, err := l.cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true})
	l.rec.observe("WATCH start", time.Since(start), err)
	return w, err == nil
}

// readWatch counts the churn events of one watch until ctx ends, opening
// it again from the last resourceVersion seen if the server closes it.
func (l *load) readWatch(ctx context.Context, ns string, w watch.Interface, got *atomic.Int64) {
	var rv string
	for {
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			rv = p.ResourceVersion
			if ev.Type == watch.Modified && p.Labels[churnLabel] == "1" {
				got.Add(1)
			}
		}
		w.Stop()
		if ctx.Err() != nil || rv == "" {
			return
		}
		var ok bool
		if w, ok = l.startWatch(ctx, ns, rv); !ok {
			return
		}
	}
}

// eventReasons are what the events say, in turn.
var eventReasons = []string{"Scheduled", "Pulling", "Pulled", "Created", "Started"}

// events creates core/v1 Events about the pods, then patches half of them
// as the event recorder patches a repeated event. kube-apiserver stores
// each with a lease of --event-ttl.
func (l *load) events(ctx context.Context) error {
	per := l.sz.events
	name := func(j int) string { return fmt.Sprintf("%s.%016x", podName(j%l.sz.pods), j) }
	if err := l.pool(ctx, len(l.nsNames)*per, func(ctx context.Context, i int) {
		ns, j := l.nsNames[i/per], i%per
		now := metav1.NewTime(time.Now())
		ev := &corev1.Event{
			ObjectMeta:          metav1.ObjectMeta{Name: name(j)},
			InvolvedObject:      corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: ns, Name: podName(j % l.sz.pods)},
			Reason:              eventReasons[j%len(eventReasons)],
			Message:             fmt.Sprintf("%s %s/%s: step %d of the kubeload workload", eventReasons[j%len(eventReasons)], ns, podName(j%l.sz.pods), j),
			Type:                corev1.EventTypeNormal,
			Source:              corev1.EventSource{Component: "kubeload"},
			FirstTimestamp:      now,
			LastTimestamp:       now,
			Count:               1,
			ReportingController: "kubeload",
			ReportingInstance:   "kubeload-0",
		}
		_ = l.rec.do(ctx, "POST events", func(ctx context.Context) error {
			_, err := l.cs.CoreV1().Events(ns).Create(ctx, ev, metav1.CreateOptions{})
			return err
		})
	}); err != nil {
		return err
	}
	return l.pool(ctx, len(l.nsNames)*per/2, func(ctx context.Context, i int) {
		ns, j := l.nsNames[2*i/per], (2*i)%per
		patch := fmt.Appendf(nil, `{"count":2,"lastTimestamp":%q}`, time.Now().UTC().Format(time.RFC3339))
		_ = l.rec.do(ctx, "PATCH events", func(ctx context.Context) error {
			_, err := l.cs.CoreV1().Events(ns).Patch(ctx, name(j), types.StrategicMergePatchType, patch, metav1.PatchOptions{})
			return err
		})
	})
}
