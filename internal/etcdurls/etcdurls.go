// Package etcdurls parses URL lists and --initial-cluster exactly as
// etcd's flags do (its types.NewURLs and NewURLsMap), for every command
// that takes them (cairn, cairnutl). It only parses; it never resolves or
// dials.
package etcdurls

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
)

// Parse parses a comma-separated URL list the way etcd's
// types.NewURLs does, so that a manifest etcd accepts is accepted here and
// one it rejects is rejected with the same words: http and https URLs need
// host:port and no path; unix and unixs URLs are taken as they are. The
// result is sorted and without duplicates, as etcd's UniqueURLs flag keeps it.
func Parse(s string) ([]url.URL, error) {
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

// Join is the inverse of Parse.
func Join(us []url.URL) string {
	s := make([]string, len(us))
	for i := range us {
		s[i] = us[i].String()
	}
	return strings.Join(s, ",")
}

// ParseInitialCluster parses --initial-cluster ("name=url,name=url,...") as
// etcd's types.NewURLsMap does: a name may appear more than once, once per
// peer URL, and each URL obeys Parse' rules.
func ParseInitialCluster(s string) (map[string][]url.URL, error) {
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
		us, err := Parse(strings.Join(byName[name], ","))
		if err != nil {
			return nil, err
		}
		out[name] = us
	}
	return out, nil
}
