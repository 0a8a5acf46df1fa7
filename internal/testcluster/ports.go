package testcluster

import (
	"fmt"
	"net"
)

// freePorts returns n distinct loopback TCP ports that were free a moment
// ago. They are held open together until all are picked, so they differ;
// another process may still take one before the member listens, which New
// handles by picking again.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("testcluster: pick a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
