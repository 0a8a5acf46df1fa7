package k8s

import (
	"context"
	"errors"
	"io"
	"os"
	"path"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/kubernetes"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc/grpclog"

	"k8s.io/apimachinery/pkg/api/apitesting"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apiserver/pkg/apis/example"
	examplev1 "k8s.io/apiserver/pkg/apis/example/v1"
	"k8s.io/apiserver/pkg/features"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/storage/etcd3"
	etcdfeature "k8s.io/apiserver/pkg/storage/feature"
	storagetesting "k8s.io/apiserver/pkg/storage/testing"
	"k8s.io/apiserver/pkg/storage/value"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/utils/clock"
)

// This file is the counterpart of the "Test-setup related" part of
// k8s.io/apiserver/pkg/storage/etcd3/store_test.go: the same scheme, codec,
// transformer and lease configuration, and a store built with etcd3.New,
// but on a client of a real server process (runServer) instead of an
// embedded etcd. Where upstream reaches into the unexported fields of its
// store, this file keeps its own handle on what it passed in.

var scheme = runtime.NewScheme()
var codecs = serializer.NewCodecFactory(scheme)

const defaultTestPrefix = "test!"

// maxLimit is etcd3's unexported page size cap (store.go), which
// checkStorageCallsInvariants needs.
const maxLimit = 10000

func init() {
	metav1.AddToGroupVersion(scheme, metav1.SchemeGroupVersion)
	utilruntime.Must(example.AddToScheme(scheme))
	utilruntime.Must(examplev1.AddToScheme(scheme))

	grpclog.SetLoggerV2(grpclog.NewLoggerV2(io.Discard, io.Discard, os.Stderr))
}

func newPod() runtime.Object     { return &example.Pod{} }
func newPodList() runtime.Object { return &example.PodList{} }

// etcdStore is what the tests use of etcd3's unexported *store: the
// storage interface plus the one exported method outside it.
type etcdStore interface {
	storage.Interface
	EnableResourceSizeEstimation(storage.KeysFunc) error
}

// testStore is the store under test with what upstream's tests read from
// its unexported fields. It implements storagetesting's
// InterfaceWithPrefixTransformer and InterfaceWithTransformerOverride by
// swapping the transformer the store was built with (a swapTransformer),
// which is what upstream's storeWithPrefixTransformer and
// storeWithTransformerOverride do to the store's and its watcher's fields.
type testStore struct {
	etcdStore
	client         *kubernetes.Client
	codec          runtime.Codec
	transformer    *swapTransformer
	groupResource  schema.GroupResource
	pathPrefix     string // the etcd key prefix, "/" + prefix + "/"
	resourcePrefix string
}

// UpdatePrefixTransformer implements storagetesting.InterfaceWithPrefixTransformer.
func (s *testStore) UpdatePrefixTransformer(modifier storagetesting.PrefixTransformerModifier) func() {
	orig := s.transformer.get()
	copied := *orig.(*storagetesting.PrefixTransformer)
	s.transformer.set(modifier(&copied))
	return func() { s.transformer.set(orig) }
}

// UpdateTransformer implements storagetesting.InterfaceWithTransformerOverride.
func (s *testStore) UpdateTransformer(modifier storagetesting.TransformerModifier) func() {
	orig := s.transformer.get()
	s.transformer.set(modifier(orig))
	return func() { s.transformer.set(orig) }
}

// getKeys is etcd3's unexported store.getKeys: every etcd key under the
// resource prefix, for EnableResourceSizeEstimation.
func (s *testStore) getKeys(ctx context.Context) ([]string, error) {
	resp, err := s.client.KV.Get(ctx, s.pathPrefix+s.resourcePrefix[1:], clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		keys = append(keys, string(kv.Key))
	}
	return keys, nil
}

// prefixTransformer is the PrefixTransformer the store was built with, for
// tests that count its reads.
func (s *testStore) prefixTransformer() *storagetesting.PrefixTransformer {
	return s.transformer.base.(*storagetesting.PrefixTransformer)
}

// swapTransformer forwards to a transformer the test can replace while the
// store runs.
type swapTransformer struct {
	base value.Transformer // the one the store was built with
	mu   sync.RWMutex
	cur  value.Transformer
}

func newSwapTransformer(t value.Transformer) *swapTransformer {
	return &swapTransformer{base: t, cur: t}
}

func (s *swapTransformer) get() value.Transformer {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.cur
}

func (s *swapTransformer) set(t value.Transformer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cur = t
}

func (s *swapTransformer) TransformFromStorage(ctx context.Context, data []byte, dataCtx value.Context) ([]byte, bool, error) {
	return s.get().TransformFromStorage(ctx, data, dataCtx)
}

func (s *swapTransformer) TransformToStorage(ctx context.Context, data []byte, dataCtx value.Context) ([]byte, error) {
	return s.get().TransformToStorage(ctx, data, dataCtx)
}

type setupOptions struct {
	codec          runtime.Codec
	newFunc        func() runtime.Object
	newListFunc    func() runtime.Object
	prefix         string
	resourcePrefix string
	groupResource  schema.GroupResource
	transformer    value.Transformer
	leaseConfig    etcd3.LeaseManagerConfig
	// progressNotify is the server's --watch-progress-notify-interval
	// (upstream's withClientConfig with WatchProgressNotifyInterval set).
	progressNotify string
}

type setupOption func(*setupOptions)

func withPrefix(prefix string) setupOption {
	return func(o *setupOptions) { o.prefix = prefix }
}

func withResourcePrefix(prefix string) setupOption {
	return func(o *setupOptions) { o.resourcePrefix = prefix }
}

func withTransformer(transformer value.Transformer) setupOption {
	return func(o *setupOptions) { o.transformer = transformer }
}

func withCodec(codec runtime.Codec) setupOption {
	return func(o *setupOptions) { o.codec = codec }
}

// withProgressNotify gives the server fastProgressNotify.
func withProgressNotify(o *setupOptions) { o.progressNotify = fastProgressNotify }

func withDefaults(o *setupOptions) {
	o.codec = apitesting.TestCodec(codecs, examplev1.SchemeGroupVersion)
	o.newFunc = newPod
	o.newListFunc = newPodList
	o.prefix = ""
	o.resourcePrefix = "/pods/"
	o.groupResource = schema.GroupResource{Resource: "pods"}
	o.transformer = newTestTransformer()
	o.leaseConfig = newTestLeaseManagerConfig()
}

func newTestLeaseManagerConfig() etcd3.LeaseManagerConfig {
	cfg := etcd3.NewDefaultLeaseManagerConfig()
	// As upstream: 30s is the default test timeout, so leases are reused
	// for 1s only.
	cfg.ReuseDurationSeconds = 1
	return cfg
}

func newTestTransformer() value.Transformer {
	return storagetesting.NewPrefixTransformer([]byte(defaultTestPrefix), false)
}

// newClient connects a Kubernetes etcd client to s, with the KV recorders
// upstream's testserver.RunEtcd installs.
func newClient(t testing.TB, s *server) *kubernetes.Client {
	t.Helper()
	client, err := kubernetes.New(clientv3.Config{
		Endpoints:   []string{s.endpoint},
		DialTimeout: 10 * time.Second,
		Logger:      zaptest.NewLogger(t, zaptest.Level(zapcore.ErrorLevel)).Named("etcd-client"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	recorder := storagetesting.NewKubernetesRecorder(client.Kubernetes)
	client.KV = storagetesting.NewKVRecorder(client.KV, recorder)
	client.Kubernetes = recorder
	return client
}

// testSetup is upstream's testSetup: a fresh server and a store on it.
func testSetup(t testing.TB, opts ...setupOption) (context.Context, *testStore, *kubernetes.Client) {
	t.Helper()
	o := setupOptions{}
	for _, opt := range append([]setupOption{withDefaults}, opts...) {
		opt(&o)
	}
	client := newClient(t, runServer(t, o.progressNotify))
	return newStoreOn(t, client, o)
}

func newStoreOn(t testing.TB, client *kubernetes.Client, o setupOptions) (context.Context, *testStore, *kubernetes.Client) {
	t.Helper()
	versioner := storage.APIObjectVersioner{}
	compactor := etcd3.NewCompactor(client.Client, 0, clock.RealClock{}, nil)
	t.Cleanup(compactor.Stop)
	transformer := newSwapTransformer(o.transformer)
	s, err := etcd3.New(
		client,
		compactor,
		o.codec,
		o.newFunc,
		o.newListFunc,
		o.prefix,
		o.resourcePrefix,
		o.groupResource,
		transformer,
		o.leaseConfig,
		etcd3.NewDefaultDecoder(o.codec, versioner),
		versioner,
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	pathPrefix := path.Join("/", o.prefix) // as etcd3.New computes it
	if pathPrefix[len(pathPrefix)-1] != '/' {
		pathPrefix += "/"
	}
	return context.Background(), &testStore{
		etcdStore:      s,
		client:         client,
		codec:          o.codec,
		transformer:    transformer,
		groupResource:  o.groupResource,
		pathPrefix:     pathPrefix,
		resourcePrefix: o.resourcePrefix,
	}, client
}

// checkStorageInvariants is upstream's KeyValidation: the stored value
// decodes and carries neither resourceVersion nor selfLink.
func checkStorageInvariants(etcdClient *clientv3.Client, codec runtime.Codec) storagetesting.KeyValidation {
	return func(ctx context.Context, t *testing.T, key string) {
		getResp, err := etcdClient.KV.Get(ctx, key)
		if err != nil {
			t.Fatalf("etcdClient.KV.Get failed: %v", err)
		}
		if len(getResp.Kvs) == 0 {
			t.Fatalf("expecting non empty result on key: %s", key)
		}
		decoded, err := runtime.Decode(codec, getResp.Kvs[0].Value[len(defaultTestPrefix):])
		if err != nil {
			t.Fatalf("expecting successful decode of object from %v\n%v", err, string(getResp.Kvs[0].Value))
		}
		obj := decoded.(*example.Pod)
		if obj.ResourceVersion != "" {
			t.Errorf("stored object should have empty resource version")
		}
		if obj.SelfLink != "" {
			t.Errorf("stored output should have empty selfLink")
		}
	}
}

// checkStorageCallsInvariants is upstream's CallsValidation: how many
// objects the transformer read and how many Range calls a paged list made.
func checkStorageCallsInvariants(transformer *storagetesting.PrefixTransformer, recorder *storagetesting.KVRecorder) storagetesting.CallsValidation {
	return func(t *testing.T, pageSize, estimatedProcessedObjects uint64) {
		if reads := transformer.GetReadsAndReset(); reads != estimatedProcessedObjects {
			t.Errorf("unexpected reads: %d, expected: %d", reads, estimatedProcessedObjects)
		}
		estimatedGetCalls := uint64(1)
		if pageSize != 0 {
			// The store doubles the page size while pages come back short
			// (see upstream's comment).
			currLimit := pageSize
			for sum := uint64(1); sum < estimatedProcessedObjects; {
				currLimit *= 2
				if currLimit > maxLimit {
					currLimit = maxLimit
				}
				sum += currLimit
				estimatedGetCalls++
			}
		}
		if reads := recorder.GetReadsAndReset() + recorder.GetStreamReadsAndReset(); reads != estimatedGetCalls {
			t.Fatalf("unexpected reads: %d, want: %d", reads, estimatedGetCalls)
		}
	}
}

// compactStorage is upstream's Compaction: etcd3.Compact at the given
// resource version, then, with ListFromCacheSnapshot, wait for the store to
// see it.
func compactStorage(s storage.Interface, client *clientv3.Client) storagetesting.Compaction {
	return func(ctx context.Context, t *testing.T, resourceVersion string) {
		versioner := storage.APIObjectVersioner{}
		rv, err := versioner.ParseResourceVersion(resourceVersion)
		if err != nil {
			t.Fatal(err)
		}
		var currentVersion int64
		currentVersion, _, _, err = etcd3.Compact(ctx, client, currentVersion, int64(rv))
		if err != nil {
			_, _, _, err = etcd3.Compact(ctx, client, currentVersion, int64(rv))
		}
		if err != nil {
			t.Fatal(err)
		}
		if utilfeature.DefaultFeatureGate.Enabled(features.ListFromCacheSnapshot) {
			for {
				select {
				case <-ctx.Done():
					t.Fatal(ctx.Err())
				case <-time.After(100 * time.Millisecond):
				}
				if s.CompactRevision() == int64(rv) {
					break
				}
			}
		}
	}
}

// increaseRVFunc is upstream's IncreaseRVFunc: one unrelated write.
func increaseRVFunc(client *clientv3.Client) storagetesting.IncreaseRVFunc {
	return func(ctx context.Context, t *testing.T) int64 {
		resp, err := client.KV.Put(ctx, "increaseRV", "ok")
		if err != nil {
			t.Fatalf("Could not update increaseRV: %v", err)
		}
		return resp.Header.Revision
	}
}

// resetFeatureSupportCheckerDuringTest makes the store probe the server's
// features (RangeStream, progress requests) afresh in this test.
func resetFeatureSupportCheckerDuringTest(t *testing.T) {
	t.Helper()
	orig := etcdfeature.DefaultFeatureSupportChecker
	etcdfeature.DefaultFeatureSupportChecker = etcdfeature.NewDefaultFeatureSupportChecker()
	t.Cleanup(func() { etcdfeature.DefaultFeatureSupportChecker = orig })
}

// corruptObjectError returns an error of etcd3's unexported
// *corruptObjectError type, as upstream builds with
// &corruptObjectError{err: fmt.Errorf("bits flipped"), errType: untransformable}:
// the exported WithCorruptObjErrorHandlingTransformer wraps a failing
// transformer's error in exactly that.
func corruptObjectError() error {
	tr := etcd3.WithCorruptObjErrorHandlingTransformer(failingTransformer{err: errors.New("bits flipped")})
	_, _, err := tr.TransformFromStorage(context.Background(), nil, value.DefaultContext{})
	return err
}

type failingTransformer struct{ err error }

func (f failingTransformer) TransformFromStorage(context.Context, []byte, value.Context) ([]byte, bool, error) {
	return nil, false, f.err
}

func (f failingTransformer) TransformToStorage(context.Context, []byte, value.Context) ([]byte, error) {
	return nil, f.err
}

// testTransformer fails reads on demand (upstream's testTransformer).
type testTransformer struct {
	value.Transformer
	fail atomic.Bool
}

func (tt *testTransformer) setFailing(c bool) { tt.fail.Store(c) }

func (tt *testTransformer) TransformFromStorage(ctx context.Context, data []byte, dataCtx value.Context) ([]byte, bool, error) {
	if tt.fail.Load() {
		return nil, false, errors.New("synthetic error")
	}
	return tt.Transformer.TransformFromStorage(ctx, data, dataCtx)
}

// testCodec fails decodes on demand (upstream's testCodec).
type testCodec struct {
	runtime.Codec
	fail atomic.Bool
}

func (tc *testCodec) setFailing(c bool) { tc.fail.Store(c) }

func (tc *testCodec) Decode(data []byte, defaults *schema.GroupVersionKind, into runtime.Object) (runtime.Object, *schema.GroupVersionKind, error) {
	if tc.fail.Load() {
		return nil, nil, errors.New("synthetic error")
	}
	return tc.Codec.Decode(data, defaults, into)
}
