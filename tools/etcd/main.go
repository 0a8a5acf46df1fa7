// Command etcd is the upstream etcd server, built from the version pinned in
// tools/go.mod so that Cairn's compatibility tests run against the real thing.
// It is a build of go.etcd.io/etcd/server/v3/etcdmain and nothing more.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
