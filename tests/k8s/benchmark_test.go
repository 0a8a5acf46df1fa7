package k8s

import (
	"fmt"
	"testing"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/require"

	"k8s.io/apiserver/pkg/features"
	storagetesting "k8s.io/apiserver/pkg/storage/testing"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	featuregatetesting "k8s.io/component-base/featuregate/testing"
	"k8s.io/klog/v2"
)

// The benchmarks are upstream's storagetesting.RunBenchmark* wiring of
// k8s.io/apiserver/pkg/storage/etcd3's store_test.go (v0.37), with the
// same data sizes (up to 150,000 pods). They are not part of run.sh; run
// them by hand to compare Cairn with etcd, e.g.
//
//	go test -run '^$' -bench BenchmarkStoreList -benchtime 3x
//	CAIRN_K8S_SERVER_BINARY=../../bin/etcd go test -run '^$' -bench BenchmarkStoreList -benchtime 3x

func BenchmarkStoreWriteThroughput(b *testing.B) {
	klog.SetLogger(logr.Discard())
	for _, dims := range []struct{ namespaceCount, podPerNamespaceCount, nodeCount int }{
		{namespaceCount: 50, podPerNamespaceCount: 3_000, nodeCount: 5_000},
	} {
		b.Run(fmt.Sprintf("Namespaces=%d/Pods=%d/Nodes=%d", dims.namespaceCount, dims.namespaceCount*dims.podPerNamespaceCount, dims.nodeCount), func(b *testing.B) {
			ctx, store, _ := testSetup(b)
			data := storagetesting.PrepareBenchmarkData(dims.namespaceCount, dims.podPerNamespaceCount, dims.nodeCount)
			b.ResetTimer()
			storagetesting.RunBenchmarkWriteThroughput(ctx, b, store, data, false, nil)
		})
	}
}

func BenchmarkStoreList(b *testing.B) {
	klog.SetLogger(logr.Discard())
	// Based on https://github.com/kubernetes/community/blob/master/sig-scalability/configs-and-limits/thresholds.md
	for _, dims := range []struct{ namespaceCount, podPerNamespaceCount, nodeCount int }{
		{namespaceCount: 10_000, podPerNamespaceCount: 15, nodeCount: 5_000},
		{namespaceCount: 50, podPerNamespaceCount: 3_000, nodeCount: 5_000},
		{namespaceCount: 100, podPerNamespaceCount: 1_100, nodeCount: 1000},
	} {
		for _, sizeBasedEnabled := range []bool{true, false} {
			featuregatetesting.SetFeatureGateDuringTest(b, utilfeature.DefaultFeatureGate, features.SizeBasedListCostEstimate, sizeBasedEnabled)
			b.Run(fmt.Sprintf("SizeBasedListCostEstimate=%v/Namespaces=%d/Pods=%d/Nodes=%d", sizeBasedEnabled, dims.namespaceCount, dims.namespaceCount*dims.podPerNamespaceCount, dims.nodeCount), func(b *testing.B) {
				data := storagetesting.PrepareBenchmarkData(dims.namespaceCount, dims.podPerNamespaceCount, dims.nodeCount)
				ctx, store, _ := testSetup(b)
				require.NoError(b, storagetesting.PrecreateBenchmarkPods(ctx, store, data))
				storagetesting.RunBenchmarkStoreList(ctx, b, store, data, false)
			})
		}
	}
}

func BenchmarkStoreStats(b *testing.B) {
	klog.SetLogger(logr.Discard())
	data := storagetesting.PrepareBenchmarkData(50, 3_000, 5_000)
	ctx, store, _ := testSetup(b)
	require.NoError(b, storagetesting.PrecreateBenchmarkPods(ctx, store, data))
	storagetesting.RunBenchmarkStoreStats(ctx, b, store)
}
