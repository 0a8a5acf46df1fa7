package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
)

// parseURLs parses a comma-separated URL list the way etcd's
// types.NewURLs does, so that a manifest etcd accepts is accepted here and
// one it rejects is rejected with the same words: http and https URLs need
// host:port and no path; unix and unixs URLs are taken as they are. The
// result is sorted and without duplicates, as etcd's UniqueURLs flag keeps it.
func parseURLs(s string) ([]url.URL, error) {
	var out []url.URL
	for in := range strings.SplitSeq(s, ",") {
		in = strings.TrimSpace(in)
		u, err := url.Parse(in)
		if err != nil {
			return nil, err
		}
		switch u.Scheme {
		case "http", "https":
			if _, _, err := net.SplitHostPort(u.Host); err != nil {
				return nil, fmt.Errorf(`URL address does not have the form "host:port": %s`, in)
			}
			if u.Path != "" {
				return nil, fmt.Errorf("URL must not contain a path: %s", in)
			}
		case "unix", "unixs":
		default:
			return nil, fmt.Errorf("URL scheme must be http, https, unix, or unixs: %s", in)
		}
		out = append(out, *u)
	}
	slices.SortFunc(out, func(a, b url.URL) int { return strings.Compare(a.String(), b.String()) })
	return slices.CompactFunc(out, func(a, b url.URL) bool { return a.String() == b.String() }), nil
}

// joinURLs is the inverse of parseURLs.
func joinURLs(us []url.URL) string {
	s := make([]string, len(us))
	for i := range us {
		s[i] = us[i].String()
	}
	return strings.Join(s, ",")
}

// parseInitialCluster parses --initial-cluster ("name=url,name=url,...") as
// etcd's types.NewURLsMap does: a name may appear more than once, once per
// peer URL, and each URL obeys parseURLs' rules.
func parseInitialCluster(s string) (map[string][]url.URL, error) {
	byName := map[string][]string{}
	var names []string
	for pair := range strings.SplitSeq(s, ",") {
		if pair == "" {
			continue
		}
		name, u, _ := strings.Cut(pair, "=")
		if _, ok := byName[name]; !ok {
			names = append(names, name)
		}
		byName[name] = append(byName[name], u)
	}
	if len(names) == 0 {
		return nil, errors.New("no members given")
	}
	out := make(map[string][]url.URL, len(names))
	for _, name := range names {
		us, err := parseURLs(strings.Join(byName[name], ","))
		if err != nil {
			return nil, err
		}
		out[name] = us
	}
	return out, nil
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
