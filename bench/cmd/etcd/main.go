// Command etcd is upstream etcd's server at the version pinned in
// bench/go.mod, for the side-by-side benchmark when the repository's
// bin/etcd (scripts/install-tools.sh) is missing or another version. It is
// a build of go.etcd.io/etcd/server/v3/etcdmain and nothing more.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
