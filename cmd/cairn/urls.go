package main

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/cairnkv/cairn/internal/etcdurls"
)

func parseURLs(s string) ([]url.URL, error) { return etcdurls.Parse(s) }

func joinURLs(us []url.URL) string { return etcdurls.Join(us) }

func parseInitialCluster(s string) (map[string][]url.URL, error) {
	return etcdurls.ParseInitialCluster(s)
}

// initialClusterFromName is etcd's default --initial-cluster: this member
// alone, under its name, at each of its advertised peer URLs.
func initialClusterFromName(name string, peerURLs []url.URL) string {
	pairs := make([]string, len(peerURLs))
	for i := range peerURLs {
		pairs[i] = name + "=" + peerURLs[i].String()
	}
	return strings.Join(pairs, ",")
}

// checkBindURLs rejects listen URLs whose host is a name rather than an IP
// address (except "localhost"), as etcd does: a name may resolve to an
// address the member cannot bind.
func checkBindURLs(us []url.URL) error {
	return checkHosts(us, func(host string, u url.URL) error {
		if host != "localhost" && net.ParseIP(host) == nil {
			return fmt.Errorf("expected IP in URL for binding (%s)", u.String())
		}
		return nil
	})
}

// checkHostURLs rejects advertised URLs with an empty host, as etcd does.
func checkHostURLs(us []url.URL) error {
	return checkHosts(us, func(host string, u url.URL) error {
		if host == "" {
			return fmt.Errorf("unexpected empty host (%s)", u.String())
		}
		return nil
	})
}

// checkHosts runs check on the host of every network (non-unix) URL.
func checkHosts(us []url.URL, check func(host string, u url.URL) error) error {
	for _, u := range us {
		if u.Scheme == "unix" || u.Scheme == "unixs" {
			continue
		}
		host, _, err := net.SplitHostPort(u.Host)
		if err != nil {
			return err
		}
		if err := check(host, u); err != nil {
			return err
		}
	}
	return nil
}
