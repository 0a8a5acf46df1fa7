package main

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// listMode is one way of asking for a list's resourceVersion.
type listMode struct {
	name string // in the client-side table
	rv   string // "" quorum, "0" any, or exact (filled in at the start of the phase)
	// exact sets resourceVersionMatch=Exact.
	exact bool
}

// kinds are the listed resources.
var kinds = []string{"pods", "configmaps", "secrets"}

// listPage is one page of a list of kind in ns ("" for all namespaces);
// it returns the continue token and the list's resourceVersion.
func (l *load) listPage(ctx context.Context, kind, ns string, opts metav1.ListOptions) (string, string, error) {
	var meta metav1.ListMeta
	var err error
	switch kind {
	case "pods":
		list, e := l.cs.CoreV1().Pods(ns).List(ctx, opts)
		if e == nil {
			meta = list.ListMeta
		}
		err = e
	case "configmaps":
		list, e := l.cs.CoreV1().ConfigMaps(ns).List(ctx, opts)
		if e == nil {
			meta = list.ListMeta
		}
		err = e
	case "secrets":
		list, e := l.cs.CoreV1().Secrets(ns).List(ctx, opts)
		if e == nil {
			meta = list.ListMeta
		}
		err = e
	default:
		return "", "", fmt.Errorf("no kind %q", kind)
	}
	return meta.Continue, meta.ResourceVersion, err
}

// listAll pages through a whole list, 500 at a time, each page one
// recorded request.
func (l *load) listAll(ctx context.Context, kind, ns string, m listMode) {
	scope := "all namespaces"
	if ns != "" {
		scope = "one namespace"
	}
	op := fmt.Sprintf("LIST %s %s", scope, m.name)
	opts := metav1.ListOptions{Limit: 500, ResourceVersion: m.rv}
	if m.exact {
		opts.ResourceVersionMatch = metav1.ResourceVersionMatchExact
	}
	for {
		var next string
		if l.rec.do(ctx, op, func(ctx context.Context) error {
			var err error
			next, _, err = l.listPage(ctx, kind, ns, opts)
			return err
		}) != nil || next == "" {
			return
		}
		// Later pages: the continue token alone (it carries the
		// resourceVersion of the first).
		opts = metav1.ListOptions{Limit: 500, Continue: next}
	}
}

// list lists every kind across all namespaces (listRepeats times in each
// mode) and in each namespace (once per mode), on the worker pool.
func (l *load) list(ctx context.Context) error {
	// A resourceVersion for the exact lists: the store's revision now
	// (nothing of the workload writes during this phase).
	var rv string
	if err := l.rec.do(ctx, `LIST all namespaces rv=""`, func(ctx context.Context) error {
		var err error
		_, rv, err = l.listPage(ctx, "pods", "", metav1.ListOptions{Limit: 1})
		return err
	}); err != nil {
		return fmt.Errorf("list for a resourceVersion: %w", err)
	}
	modes := []listMode{
		{name: `rv=""`},
		{name: `rv=0`, rv: "0"},
		{name: `rv=exact`, rv: rv, exact: true},
	}
	type task struct {
		kind, ns string
		mode     listMode
	}
	var tasks []task
	for range l.sz.listRepeats {
		for _, k := range kinds {
			for _, m := range modes {
				tasks = append(tasks, task{k, "", m})
			}
		}
	}
	for _, ns := range l.nsNames {
		for _, k := range kinds {
			for _, m := range modes {
				tasks = append(tasks, task{k, ns, m})
			}
		}
	}
	return l.pool(ctx, len(tasks), func(ctx context.Context, i int) {
		t := tasks[i]
		l.listAll(ctx, t.kind, t.ns, t.mode)
	})
}

// delete removes every object one by one, each namespace's events with
// one DeleteCollection, then the namespaces (which stay Terminating:
// without a controller manager nothing finalizes them; everything in them
// is gone by then).
func (l *load) delete(ctx context.Context) error {
	sz := l.sz
	per := sz.pods + sz.configMaps + sz.secrets
	if err := l.pool(ctx, len(l.nsNames)*per, func(ctx context.Context, i int) {
		ns, j := l.nsNames[i/per], i%per
		core := l.cs.CoreV1()
		switch {
		case j < sz.pods:
			_ = l.rec.do(ctx, "DELETE pods", func(ctx context.Context) error {
				return core.Pods(ns).Delete(ctx, podName(j), metav1.DeleteOptions{})
			})
		case j < sz.pods+sz.configMaps:
			j -= sz.pods
			_ = l.rec.do(ctx, "DELETE configmaps", func(ctx context.Context) error {
				return core.ConfigMaps(ns).Delete(ctx, cmName(j), metav1.DeleteOptions{})
			})
		default:
			j -= sz.pods + sz.configMaps
			_ = l.rec.do(ctx, "DELETE secrets", func(ctx context.Context) error {
				return core.Secrets(ns).Delete(ctx, secretName(j), metav1.DeleteOptions{})
			})
		}
	}); err != nil {
		return err
	}
	return l.pool(ctx, len(l.nsNames), func(ctx context.Context, i int) {
		ns := l.nsNames[i]
		core := l.cs.CoreV1()
		_ = l.rec.do(ctx, "DELETECOLLECTION events", func(ctx context.Context) error {
			return core.Events(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
		})
		_ = l.rec.do(ctx, "DELETE serviceaccounts", func(ctx context.Context) error {
			return core.ServiceAccounts(ns).Delete(ctx, "default", metav1.DeleteOptions{})
		})
		_ = l.rec.do(ctx, "DELETE namespaces", func(ctx context.Context) error {
			return core.Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
		})
	})
}
