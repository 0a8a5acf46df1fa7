// Command loadkeys puts N keys of 1 KiB into one endpoint with 32
// concurrent clients, for measurements that need a filled store (the
// snapshot-save comparison in docs/BENCHMARKS.md).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func main() {
	endpoint := flag.String("endpoint", "127.0.0.1:2379", "client URL")
	n := flag.Int("n", 100000, "keys to put")
	size := flag.Int("size", 1024, "value size in bytes")
	flag.Parse()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{*endpoint}})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	val := string(make([]byte, *size))
	const workers = 32
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < *n; i += workers {
				if _, err := cli.Put(context.Background(), fmt.Sprintf("key/%08d", i), val); err != nil {
					log.Fatal(err)
				}
			}
		}()
	}
	wg.Wait()
	fmt.Printf("loaded %d keys in %v\n", *n, time.Since(start).Round(time.Millisecond))
}
