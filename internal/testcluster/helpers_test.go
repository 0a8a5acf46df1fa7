package testcluster_test

import clientv3 "go.etcd.io/etcd/client/v3"

func clientOpPuts(keys ...string) []clientv3.Op {
	ops := make([]clientv3.Op, len(keys))
	for i, k := range keys {
		ops[i] = clientv3.OpPut(k, "v")
	}
	return ops
}
