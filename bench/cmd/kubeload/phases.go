package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/util/retry"
)

func cmName(j int) string     { return fmt.Sprintf("config-%03d", j) }
func secretName(j int) string { return fmt.Sprintf("secret-%03d", j) }
func podName(j int) string    { return fmt.Sprintf("pod-%03d", j) }

// create makes the namespaces (each with the service account "default",
// which the ServiceAccount admission plugin wants before a pod, and which
// no controller manager creates here), then their config maps, secrets and
// pods.
func (l *load) create(ctx context.Context) error {
	if err := l.pool(ctx, len(l.nsNames), func(ctx context.Context, i int) {
		ns := l.nsNames[i]
		if l.rec.do(ctx, "POST namespaces", func(ctx context.Context) error {
			_, err := l.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{"kubeload": "1"}}}, metav1.CreateOptions{})
			return err
		}) != nil {
			return
		}
		_ = l.rec.do(ctx, "POST serviceaccounts", func(ctx context.Context) error {
			_, err := l.cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{})
			return err
		})
	}); err != nil {
		return err
	}
	sz := l.sz
	per := sz.configMaps + sz.secrets + sz.pods
	return l.pool(ctx, len(l.nsNames)*per, func(ctx context.Context, i int) {
		ns, j := l.nsNames[i/per], i%per
		switch {
		case j < sz.configMaps:
			_ = l.rec.do(ctx, "POST configmaps", func(ctx context.Context) error {
				_, err := l.cs.CoreV1().ConfigMaps(ns).Create(ctx, configMap(ns, j, sz.configMapBytes), metav1.CreateOptions{})
				return err
			})
		case j < sz.configMaps+sz.secrets:
			j -= sz.configMaps
			_ = l.rec.do(ctx, "POST secrets", func(ctx context.Context) error {
				_, err := l.cs.CoreV1().Secrets(ns).Create(ctx, secret(j, sz.secretBytes), metav1.CreateOptions{})
				return err
			})
		default:
			j -= sz.configMaps + sz.secrets
			_ = l.rec.do(ctx, "POST pods", func(ctx context.Context) error {
				_, err := l.cs.CoreV1().Pods(ns).Create(ctx, pod(ns, j, sz.podEnv), metav1.CreateOptions{})
				return err
			})
		}
	})
}

// filler is n bytes of text that differs by seed.
func filler(seed string, n int) string {
	var b strings.Builder
	for b.Len() < n {
		fmt.Fprintf(&b, "%s-%d;", seed, b.Len())
	}
	return b.String()[:n]
}

func configMap(ns string, j, size int) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: cmName(j), Labels: map[string]string{"app": fmt.Sprintf("app-%d", j%10), "kubeload": "1"}},
		Data: map[string]string{
			"config.yaml": filler(ns+"/"+cmName(j), size),
			"generation":  "0",
		},
	}
}

func secret(j, size int) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: secretName(j), Labels: map[string]string{"app": fmt.Sprintf("app-%d", j%10), "kubeload": "1"}},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{"token": []byte(filler(secretName(j), size))},
	}
}

// pod is a typical unscheduled pod: one container with resources, ports,
// a few environment variables and probes. Nothing schedules or runs it
// (no scheduler, no kubelet); the update phase writes a status as a kubelet
// would.
func pod(ns string, j, env int) *corev1.Pod {
	c := corev1.Container{
		Name:  "app",
		Image: "registry.k8s.io/pause:3.10",
		Args:  []string{"--listen=:8080", "--name=" + podName(j)},
		Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
		},
		ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}}, PeriodSeconds: 10},
	}
	for k := range env {
		c.Env = append(c.Env, corev1.EnvVar{Name: fmt.Sprintf("SETTING_%d", k), Value: filler(fmt.Sprintf("%s/%d/%d", ns, j, k), 32)})
	}
	var grace int64 = 30
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:        podName(j),
			Labels:      map[string]string{"app": fmt.Sprintf("app-%d", j%10), "kubeload": "1"},
			Annotations: map[string]string{"kubeload/created-by": "kubeload"},
		},
		Spec: corev1.PodSpec{
			Containers:                    []corev1.Container{c},
			RestartPolicy:                 corev1.RestartPolicyAlways,
			TerminationGracePeriodSeconds: &grace,
		},
	}
}

// update patches every pod's status once and updates every config map
// twice, read-modify-write, the two updates of one config map next to
// each other in the queue (so two workers run them at about the same time
// and some conflict and retry), config map and pod tasks interleaved.
func (l *load) update(ctx context.Context) error {
	sz := l.sz
	type task struct {
		pod   bool
		ns, j int
	}
	nPods, nCM := len(l.nsNames)*sz.pods, len(l.nsNames)*sz.configMaps
	var tasks []task
	for k := range max(nPods, nCM) {
		if k < nCM {
			t := task{ns: k / sz.configMaps, j: k % sz.configMaps}
			tasks = append(tasks, t, t)
		}
		if k < nPods {
			tasks = append(tasks, task{pod: true, ns: k / sz.pods, j: k % sz.pods})
		}
	}
	return l.pool(ctx, len(tasks), func(ctx context.Context, i int) {
		t := tasks[i]
		ns := l.nsNames[t.ns]
		if !t.pod {
			l.guaranteedUpdate(ctx, ns, cmName(t.j))
			return
		}
		_ = l.rec.do(ctx, "PATCH pods/status", func(ctx context.Context) error {
			_, err := l.cs.CoreV1().Pods(ns).Patch(ctx, podName(t.j), types.StrategicMergePatchType, podStatusPatch(t.j), metav1.PatchOptions{}, "status")
			return err
		})
	})
}

// podStatusPatch is the status a kubelet would report for a running pod.
func podStatusPatch(j int) []byte {
	now := time.Now().UTC().Format(time.RFC3339)
	ip := fmt.Sprintf("10.244.%d.%d", j/250, j%250+1)
	return fmt.Appendf(nil, `{"status":{"phase":"Running","podIP":%q,"podIPs":[{"ip":%q}],"startTime":%q,`+
		`"conditions":[{"type":"Initialized","status":"True","lastTransitionTime":%q},{"type":"Ready","status":"True","lastTransitionTime":%q},`+
		`{"type":"ContainersReady","status":"True","lastTransitionTime":%q}],`+
		`"containerStatuses":[{"name":"app","ready":true,"restartCount":0,"image":"registry.k8s.io/pause:3.10","imageID":"","started":true,"state":{"running":{"startedAt":%q}}}]}}`,
		ip, ip, now, now, now, now, now)
}

// guaranteedUpdate is a read-modify-write of one config map: Get, change,
// Update with the resourceVersion read; on 409 Conflict read again
// (client-go's retry.RetryOnConflict, the client half of the apiserver's
// GuaranteedUpdate).
func (l *load) guaranteedUpdate(ctx context.Context, ns, name string) {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var cm *corev1.ConfigMap
		if err := l.rec.do(ctx, "GET configmaps", func(ctx context.Context) error {
			var err error
			cm, err = l.cs.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
			return err
		}); err != nil {
			return err
		}
		var gen int
		fmt.Sscan(cm.Data["generation"], &gen)
		cm.Data["generation"] = fmt.Sprint(gen + 1)
		cm.Data["config.yaml"] = filler(fmt.Sprintf("%s/%s/%d", ns, name, gen+1), len(cm.Data["config.yaml"]))
		return l.rec.do(ctx, "PUT configmaps", func(ctx context.Context) error {
			_, err := l.cs.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{})
			return err
		})
	})
	if apierrors.IsConflict(err) {
		l.rec.fail(fmt.Errorf("update %s/%s: still conflicting after retries: %w", ns, name, err))
	}
}
