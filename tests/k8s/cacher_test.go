package k8s

import (
	"context"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/kubernetes"

	"k8s.io/apimachinery/pkg/api/apitesting"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/apis/example"
	examplev1 "k8s.io/apiserver/pkg/apis/example/v1"
	"k8s.io/apiserver/pkg/features"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/storage/cacher"
	"k8s.io/apiserver/pkg/storage/etcd3"
	storagetesting "k8s.io/apiserver/pkg/storage/testing"
	"k8s.io/apiserver/pkg/storage/value"
	"k8s.io/apiserver/pkg/storage/value/encrypt/identity"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	clientfeatures "k8s.io/client-go/features"
	"k8s.io/client-go/tools/cache"
	featuregatetesting "k8s.io/component-base/featuregate/testing"
	"k8s.io/utils/clock"
)

// The TestCacher* tests are those of k8s.io/apiserver/pkg/storage/cacher's
// cacher_test.go (v0.37) that run a storagetesting.Run* function: the same
// suite through the watch cache kube-apiserver puts in front of the etcd3
// store. The cache lists and watches the server (with progress requests
// for consistent reads), so it exercises the Watch API harder than the
// store alone. README.md lists the ones left out.

var examplev1ProtoCodec runtime.Codec

func init() {
	pb := protobuf.NewSerializer(scheme, scheme)
	examplev1ProtoCodec = codecs.CodecForVersions(pb, pb, schema.GroupVersions{examplev1.SchemeGroupVersion}, nil)
}

// cacherPodAttrs is upstream's GetPodAttrs.
func cacherPodAttrs(obj runtime.Object) (labels.Set, fields.Set, error) {
	pod, ok := obj.(*example.Pod)
	if !ok {
		return nil, nil, fmt.Errorf("not a pod")
	}
	return labels.Set(pod.Labels), fields.Set{
		"spec.nodeName":      pod.Spec.NodeName,
		"spec.restartPolicy": string(pod.Spec.RestartPolicy),
		"status.phase":       string(pod.Status.Phase),
		"metadata.name":      pod.Name,
		"metadata.namespace": pod.Namespace,
	}, nil
}

type cacherOptions struct {
	resourcePrefix string
	keyFunc        func(runtime.Object) (string, error)
	indexerFuncs   map[string]storage.IndexerFunc
	indexers       cache.Indexers
	codec          runtime.Codec
	transformer    value.Transformer
}

type cacherOption func(*cacherOptions)

func cacherDefaults(o *cacherOptions) {
	prefix := "/pods/"
	o.resourcePrefix = prefix
	o.keyFunc = func(obj runtime.Object) (string, error) { return storage.NamespaceKeyFunc(prefix, obj) }
	o.codec = examplev1ProtoCodec
	o.transformer = identity.NewEncryptCheckTransformer()
}

func withClusterScopedKeyFunc(o *cacherOptions) {
	o.keyFunc = func(obj runtime.Object) (string, error) {
		return storage.NoNamespaceKeyFunc(o.resourcePrefix, obj)
	}
}

// withNodeNameAndNamespaceIndex mirrors pkg/registry/core/pod/strategy.go,
// as upstream's does.
func withNodeNameAndNamespaceIndex(o *cacherOptions) {
	o.indexerFuncs = map[string]storage.IndexerFunc{
		"spec.nodeName": func(obj runtime.Object) string {
			pod, ok := obj.(*example.Pod)
			if !ok {
				return ""
			}
			return pod.Spec.NodeName
		},
	}
	o.indexers = map[string]cache.IndexFunc{
		"f:spec.nodeName": func(obj interface{}) ([]string, error) {
			return []string{obj.(*example.Pod).Spec.NodeName}, nil
		},
		"f:metadata.namespace": func(obj interface{}) ([]string, error) {
			return []string{obj.(*example.Pod).Namespace}, nil
		},
	}
}

func withCacherCodec(codec runtime.Codec) cacherOption {
	return func(o *cacherOptions) { o.codec = codec }
}

func withCacherTransformer(transformer value.Transformer) cacherOption {
	return func(o *cacherOptions) { o.transformer = transformer }
}

// cacherSetup is upstream's testSetupWithEtcdServer: an etcd3 store on a
// fresh server (prefix /registry, as etcd3testing.PathPrefix), one injected
// list error to exercise the relist, and a cacher over it, initialized.
func cacherSetup(t *testing.T, opts ...cacherOption) (context.Context, *cacher.CacheDelegator, *kubernetes.Client) {
	t.Helper()
	o := cacherOptions{}
	for _, opt := range append([]cacherOption{cacherDefaults}, opts...) {
		opt(&o)
	}
	client := newClient(t, runServer(t, ""))
	_, store, _ := newStoreOn(t, client, setupOptions{
		codec:          o.codec,
		newFunc:        newPod,
		newListFunc:    newPodList,
		prefix:         "/registry",
		resourcePrefix: "/pods/",
		groupResource:  schema.GroupResource{Resource: "pods"},
		transformer:    o.transformer,
		leaseConfig:    etcd3.NewDefaultLeaseManagerConfig(),
	})
	listErrors := 1
	if clientfeatures.FeatureGates().Enabled(clientfeatures.WatchListClient) {
		listErrors = 0 // the reflector watches instead of listing
	}
	wrapped := &storagetesting.StorageInjectingListErrors{Interface: store.etcdStore, Errors: listErrors}
	c, err := cacher.NewCacherFromConfig(cacher.Config{
		Storage:             wrapped,
		Versioner:           storage.APIObjectVersioner{},
		GroupResource:       schema.GroupResource{Resource: "pods"},
		EventsHistoryWindow: cacher.DefaultEventFreshDuration,
		ResourcePrefix:      o.resourcePrefix,
		KeyFunc:             o.keyFunc,
		GetAttrsFunc:        cacherPodAttrs,
		NewFunc:             newPod,
		NewListFunc:         newPodList,
		IndexerFuncs:        o.indexerFuncs,
		Indexers:            &o.indexers,
		Codec:               o.codec,
		Clock:               clock.RealClock{},
	})
	if err != nil {
		t.Fatalf("Failed to initialize cacher: %v", err)
	}
	ctx := context.Background()
	if err := wait.PollInfinite(100*time.Millisecond, wrapped.ErrorsConsumed); err != nil {
		t.Fatalf("Failed to inject list errors: %v", err)
	}
	if err := c.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	delegator := cacher.NewCacheDelegator(c, wrapped)
	t.Cleanup(func() {
		delegator.Stop()
		c.Stop()
	})
	return ctx, delegator, client
}

// createWrapper is upstream's: Create returns once the cache serves the
// created object.
type createWrapper struct {
	*cacher.CacheDelegator
}

func (c *createWrapper) Create(ctx context.Context, key string, obj, out runtime.Object, ttl uint64) error {
	if err := c.CacheDelegator.Create(ctx, key, obj, out, ttl); err != nil {
		return err
	}
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, wait.ForeverTestTimeout, true, func(ctx context.Context) (bool, error) {
		currentObj := newPod()
		err := c.CacheDelegator.Get(ctx, key, storage.GetOptions{ResourceVersion: "0"}, currentObj)
		if err != nil {
			if storage.IsNotFound(err) {
				return false, nil
			}
			return false, err
		}
		return apiequality.Semantic.DeepEqual(currentObj, out), nil
	})
}

// cacherCompactStore is upstream's compactStore for a cacher without its
// own compactor (ListFromCacheSnapshot off): compact the server.
func cacherCompactStore(client *clientv3.Client) storagetesting.Compaction {
	return func(ctx context.Context, t *testing.T, resourceVersion string) {
		if utilfeature.DefaultFeatureGate.Enabled(features.ListFromCacheSnapshot) {
			t.Fatal("the cacher's compactor is unexported; run with ListFromCacheSnapshot off")
		}
		rv, err := storage.APIObjectVersioner{}.ParseResourceVersion(resourceVersion)
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
	}
}

func noStorageInvariants(ctx context.Context, t *testing.T, key string) {}

func noStorageCalls(t *testing.T, pageSize, estimatedProcessedObjects uint64) {}

func TestCacherCreate(t *testing.T) {
	ctx, c, _ := cacherSetup(t)
	storagetesting.RunTestCreate(ctx, t, c, noStorageInvariants)
}

func TestCacherCreateWithTTL(t *testing.T) {
	ctx, c, _ := cacherSetup(t)
	storagetesting.RunTestCreateWithTTL(ctx, t, c)
}

func TestCacherCreateWithKeyExist(t *testing.T) {
	ctx, c, _ := cacherSetup(t)
	storagetesting.RunTestCreateWithKeyExist(ctx, t, c)
}

func TestCacherGet(t *testing.T) {
	ctx, c, _ := cacherSetup(t)
	storagetesting.RunTestGet(ctx, t, c)
}

func TestCacherUnconditionalDelete(t *testing.T) {
	ctx, c, _ := cacherSetup(t)
	storagetesting.RunTestUnconditionalDelete(ctx, t, c)
}

func TestCacherConditionalDelete(t *testing.T) {
	ctx, c, _ := cacherSetup(t)
	storagetesting.RunTestConditionalDelete(ctx, t, c)
}

func TestCacherDeleteWithSuggestion(t *testing.T) {
	ctx, c, _ := cacherSetup(t)
	storagetesting.RunTestDeleteWithSuggestion(ctx, t, c)
}

func TestCacherDeleteWithSuggestionAndConflict(t *testing.T) {
	ctx, c, _ := cacherSetup(t)
	storagetesting.RunTestDeleteWithSuggestionAndConflict(ctx, t, c)
}

func TestCacherDeleteWithSuggestionOfDeletedObject(t *testing.T) {
	ctx, c, _ := cacherSetup(t)
	storagetesting.RunTestDeleteWithSuggestionOfDeletedObject(ctx, t, c)
}

func TestCacherValidateDeletionWithSuggestion(t *testing.T) {
	ctx, c, _ := cacherSetup(t)
	storagetesting.RunTestValidateDeletionWithSuggestion(ctx, t, c)
}

func TestCacherValidateDeletionWithOnlySuggestionValid(t *testing.T) {
	ctx, c, _ := cacherSetup(t)
	storagetesting.RunTestValidateDeletionWithOnlySuggestionValid(ctx, t, c)
}

func TestCacherDeleteWithConflict(t *testing.T) {
	ctx, c, _ := cacherSetup(t)
	storagetesting.RunTestDeleteWithConflict(ctx, t, c)
}

func TestCacherDeleteWithConflictAndMissingExpectedTransformOrDecodeError(t *testing.T) {
	featuregatetesting.SetFeatureGateDuringTest(t, utilfeature.DefaultFeatureGate, features.AllowUnsafeMalformedObjectDeletion, true)
	transformer := &testTransformer{Transformer: identity.NewEncryptCheckTransformer()}
	ctx, c, _ := cacherSetup(t, withCacherTransformer(transformer))
	storagetesting.RunTestDeleteWithConflictAndMissingExpectedTransformOrDecodeError(ctx, t, c, transformer.setFailing)
}

func TestCacherDeleteWithConflictAndExpectedTransformError(t *testing.T) {
	featuregatetesting.SetFeatureGateDuringTest(t, utilfeature.DefaultFeatureGate, features.AllowUnsafeMalformedObjectDeletion, true)
	transformer := &testTransformer{Transformer: identity.NewEncryptCheckTransformer()}
	ctx, c, _ := cacherSetup(t, withCacherTransformer(transformer))
	storagetesting.RunTestDeleteExpectedTransformOrDecodeError(ctx, t, c, transformer.setFailing)
}

func TestCacherDeleteWithConflictAndExpectedDecodeError(t *testing.T) {
	featuregatetesting.SetFeatureGateDuringTest(t, utilfeature.DefaultFeatureGate, features.AllowUnsafeMalformedObjectDeletion, true)
	// As upstream: the test decodes garbage on purpose.
	etcd3.TestOnlySetFatalOnDecodeError(t, false)
	codec := &testCodec{Codec: apitesting.TestCodec(codecs, examplev1.SchemeGroupVersion)}
	ctx, c, _ := cacherSetup(t, withCacherCodec(codec))
	storagetesting.RunTestDeleteExpectedTransformOrDecodeError(ctx, t, c, codec.setFailing)
}

func TestCacherDeleteWithSuggestionAndMissingExpectedTransformOrDecodeError(t *testing.T) {
	featuregatetesting.SetFeatureGateDuringTest(t, utilfeature.DefaultFeatureGate, features.AllowUnsafeMalformedObjectDeletion, true)
	ctx, c, _ := cacherSetup(t)
	storagetesting.RunTestDeleteWithSuggestionAndMissingExpectedTransformOrDecodeError(ctx, t, c)
}

func TestCacherPreconditionalDeleteWithSuggestion(t *testing.T) {
	ctx, c, _ := cacherSetup(t)
	storagetesting.RunTestPreconditionalDeleteWithSuggestion(ctx, t, c)
}

func TestCacherPreconditionalDeleteWithSuggestionPass(t *testing.T) {
	ctx, c, _ := cacherSetup(t)
	storagetesting.RunTestPreconditionalDeleteWithOnlySuggestionPass(ctx, t, c)
}

func TestCacherListPaging(t *testing.T) {
	ctx, c, _ := cacherSetup(t)
	storagetesting.RunTestListPaging(ctx, t, c)
}

// TestCacherLists is upstream's TestLists, except List with
// ListFromCacheSnapshot on (its compaction needs the cacher's unexported
// compactor).
func TestCacherLists(t *testing.T) {
	for _, listFromCacheSnapshot := range []bool{true, false} {
		t.Run(fmt.Sprintf("ListFromCacheSnapshot=%v", listFromCacheSnapshot), func(t *testing.T) {
			featuregatetesting.SetFeatureGateDuringTest(t, utilfeature.DefaultFeatureGate, features.ListFromCacheSnapshot, listFromCacheSnapshot)
			if !listFromCacheSnapshot {
				t.Run("List", func(t *testing.T) {
					t.Parallel()
					ctx, c, client := cacherSetup(t)
					storagetesting.RunTestList(ctx, t, c, cacherCompactStore(client.Client), true, client.Kubernetes.(*storagetesting.KubernetesRecorder))
				})
			}
			t.Run("ConsistentList", func(t *testing.T) {
				t.Parallel()
				ctx, c, client := cacherSetup(t)
				storagetesting.RunTestConsistentList(ctx, t, c, increaseRVFunc(client.Client), true, true, listFromCacheSnapshot)
			})
			t.Run("GetListNonRecursive", func(t *testing.T) {
				t.Parallel()
				ctx, c, client := cacherSetup(t)
				storagetesting.RunTestGetListNonRecursive(ctx, t, increaseRVFunc(client.Client), c)
			})
		})
	}
}

func TestCacherGetListRecursivePrefix(t *testing.T) {
	ctx, c, _ := cacherSetup(t)
	storagetesting.RunTestGetListRecursivePrefix(ctx, t, c)
}

func TestCacherListContinuation(t *testing.T) {
	ctx, c, _ := cacherSetup(t)
	storagetesting.RunTestListContinuation(ctx, t, c, noStorageCalls)
}

func TestCacherListPaginationRareObject(t *testing.T) {
	ctx, c, _ := cacherSetup(t)
	storagetesting.RunTestListPaginationRareObject(ctx, t, c, noStorageCalls)
}

func TestCacherListContinuationWithFilter(t *testing.T) {
	ctx, c, _ := cacherSetup(t)
	storagetesting.RunTestListContinuationWithFilter(ctx, t, c, noStorageCalls)
}

func TestCacherNamespaceScopedList(t *testing.T) {
	ctx, c, _ := cacherSetup(t, withNodeNameAndNamespaceIndex)
	storagetesting.RunTestNamespaceScopedList(ctx, t, c)
}

func TestCacherGuaranteedUpdateWithTTL(t *testing.T) {
	ctx, c, _ := cacherSetup(t)
	storagetesting.RunTestGuaranteedUpdateWithTTL(ctx, t, c)
}

func TestCacherGuaranteedUpdateWithConflict(t *testing.T) {
	ctx, c, _ := cacherSetup(t)
	storagetesting.RunTestGuaranteedUpdateWithConflict(ctx, t, c)
}

func TestCacherGuaranteedUpdateWithSuggestionAndConflict(t *testing.T) {
	ctx, c, _ := cacherSetup(t)
	storagetesting.RunTestGuaranteedUpdateWithSuggestionAndConflict(ctx, t, c)
}

func TestCacherStats(t *testing.T) {
	for _, sizeBasedListCostEstimate := range []bool{true, false} {
		t.Run(fmt.Sprintf("SizeBasedListCostEstimate=%v", sizeBasedListCostEstimate), func(t *testing.T) {
			featuregatetesting.SetFeatureGateDuringTest(t, utilfeature.DefaultFeatureGate, features.SizeBasedListCostEstimate, sizeBasedListCostEstimate)
			ctx, c, _ := cacherSetup(t)
			storagetesting.RunTestStats(ctx, t, c, examplev1ProtoCodec, identity.NewEncryptCheckTransformer(), sizeBasedListCostEstimate)
		})
	}
}

func TestCacherKeySchema(t *testing.T) {
	ctx, c, _ := cacherSetup(t)
	storagetesting.RunTestKeySchema(ctx, t, c)
}

// TestCacherWatch is upstream's TestWatch for the cacher, except
// WatchFromZero (its compaction edits the cache's unexported history).
func TestCacherWatch(t *testing.T) {
	t.Run("Watch", func(t *testing.T) {
		ctx, c, _ := cacherSetup(t)
		storagetesting.RunTestWatch(ctx, t, c)
	})
	t.Run("DeleteTriggerWatch", func(t *testing.T) {
		ctx, c, _ := cacherSetup(t)
		storagetesting.RunTestDeleteTriggerWatch(ctx, t, c)
	})
	t.Run("WatchFromNonZero", func(t *testing.T) {
		ctx, c, _ := cacherSetup(t)
		storagetesting.RunTestWatchFromNonZero(ctx, t, c)
	})
	t.Run("DelayedWatchDelivery", func(t *testing.T) {
		ctx, c, _ := cacherSetup(t)
		storagetesting.RunTestDelayedWatchDelivery(ctx, t, c)
	})
	t.Run("WatcherTimeout", func(t *testing.T) {
		ctx, c, _ := cacherSetup(t)
		storagetesting.RunTestWatcherTimeout(ctx, t, c)
	})
	t.Run("WatchDeleteEventObjectHaveLatestRV", func(t *testing.T) {
		ctx, c, _ := cacherSetup(t)
		storagetesting.RunTestWatchDeleteEventObjectHaveLatestRV(ctx, t, c)
	})
	t.Run("WatchInitializationSignal", func(t *testing.T) {
		ctx, c, _ := cacherSetup(t)
		storagetesting.RunTestWatchInitializationSignal(ctx, t, c)
	})
	t.Run("ClusterScopedWatch", func(t *testing.T) {
		ctx, c, _ := cacherSetup(t, withClusterScopedKeyFunc, withNodeNameAndNamespaceIndex)
		storagetesting.RunTestClusterScopedWatch(ctx, t, c)
	})
	t.Run("NamespaceScopedWatch", func(t *testing.T) {
		ctx, c, _ := cacherSetup(t, withNodeNameAndNamespaceIndex)
		storagetesting.RunTestNamespaceScopedWatch(ctx, t, c)
	})
	t.Run("WatchDispatchBookmarkEvents", func(t *testing.T) {
		ctx, c, _ := cacherSetup(t)
		storagetesting.RunTestWatchDispatchBookmarkEvents(ctx, t, c, true)
	})
	t.Run("WatchBookmarksWithCorrectResourceVersion", func(t *testing.T) {
		ctx, c, _ := cacherSetup(t)
		storagetesting.RunTestOptionalWatchBookmarksWithCorrectResourceVersion(ctx, t, c)
	})
	t.Run("SendInitialEventsBackwardCompatibility", func(t *testing.T) {
		ctx, c, _ := cacherSetup(t)
		storagetesting.RunSendInitialEventsBackwardCompatibility(ctx, t, c)
	})
	t.Run("WatchSemantics", func(t *testing.T) {
		_, c, _ := cacherSetup(t)
		storagetesting.RunWatchSemantics(context.TODO(), t, &createWrapper{CacheDelegator: c})
	})
	t.Run("WatchSemanticInitialEventsExtended", func(t *testing.T) {
		_, c, _ := cacherSetup(t)
		storagetesting.RunWatchSemanticInitialEventsExtended(context.TODO(), t, &createWrapper{CacheDelegator: c})
	})
	t.Run("WatchListMatchSingle", func(t *testing.T) {
		_, c, _ := cacherSetup(t)
		storagetesting.RunWatchListMatchSingle(context.TODO(), t, &createWrapper{CacheDelegator: c})
	})
}
