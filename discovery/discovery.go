// Package discovery bootstraps a new cluster through etcd's v3 discovery
// protocol: the members of the new cluster meet under keys of another
// cluster (Cairn or etcd), with etcd's layout, so either can serve as the
// discovery service of the other:
//
//	/_etcd/registry/<token>/_config/size        the cluster's size
//	/_etcd/registry/<token>/members/<member ID>  "name=peerURL,name=peerURL"
//
// A member reads the size, checks the cluster is not full, registers
// itself, and waits until size members have; the first size by creation
// revision make up the initial cluster.
//
// It owns only that exchange, over a clientv3 client of the discovery
// service; it never touches this member's own store. Unlike etcd, a
// member that registered and then finds the cluster full removes its key
// again, so a failed discovery leaves nothing behind.
package discovery

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// etcd's errors, with its texts.
var (
	ErrInvalidURL   = errors.New("discovery: invalid peer URL")
	ErrBadSizeKey   = errors.New("discovery: size key is bad")
	ErrSizeNotFound = errors.New("discovery: size key not found")
	ErrFullCluster  = errors.New("discovery: cluster is full")
)

const prefix = "/_etcd/registry"

// Config is etcd's --discovery-* flags.
type Config struct {
	Endpoints []string
	Token     string

	DialTimeout      time.Duration // --discovery-dial-timeout, 2s
	RequestTimeout   time.Duration // --discovery-request-timeout, 5s
	KeepAliveTime    time.Duration // --discovery-keepalive-time, 2s
	KeepAliveTimeout time.Duration // --discovery-keepalive-timeout, 6s

	InsecureTransport  bool // --discovery-insecure-transport, true
	InsecureSkipVerify bool
	Cert, Key, CACert  string

	// User may be "name:password" (then Password is empty), as etcd's
	// --discovery-user.
	User, Password string
}

// Defaults are etcd's.
func Defaults() Config {
	return Config{DialTimeout: 2 * time.Second, RequestTimeout: 5 * time.Second, KeepAliveTime: 2 * time.Second,
		KeepAliveTimeout: 6 * time.Second, InsecureTransport: true}
}

// Check validates the flags as etcd does.
func (c Config) Check() error {
	if (c.Token != "") != (len(c.Endpoints) > 0) {
		return errors.New("both --discovery-token and --discovery-endpoints must be set")
	}
	for _, ep := range c.Endpoints {
		if strings.TrimSpace(ep) == "" {
			return errors.New("--discovery-endpoints must not contain empty endpoints")
		}
	}
	return nil
}

func (c Config) client() (*clientv3.Client, error) {
	cc := clientv3.Config{
		Endpoints: c.Endpoints, DialTimeout: c.DialTimeout,
		DialKeepAliveTime: c.KeepAliveTime, DialKeepAliveTimeout: c.KeepAliveTimeout,
		Logger: zap.NewNop(),
	}
	if c.User != "" {
		cc.Username, cc.Password = c.User, c.Password
		if name, pw, ok := strings.Cut(c.User, ":"); ok && c.Password == "" {
			cc.Username, cc.Password = name, pw
		}
	}
	if !c.InsecureTransport || c.Cert != "" || c.CACert != "" {
		info := transport.TLSInfo{CertFile: c.Cert, KeyFile: c.Key, TrustedCAFile: c.CACert, InsecureSkipVerify: c.InsecureSkipVerify}
		var tc *tls.Config
		var err error
		if c.Cert != "" || c.CACert != "" {
			if tc, err = info.ClientConfig(); err != nil {
				return nil, fmt.Errorf("discovery: %w", err)
			}
		} else {
			tc = &tls.Config{InsecureSkipVerify: c.InsecureSkipVerify} //nolint:gosec // the operator's choice, as in etcd
		}
		cc.TLS = tc
	}
	return clientv3.New(cc)
}

// member is one registration.
type member struct {
	key, urls string
	rev       int64
}

// Join registers this member (ID memberID, self its "name=peerURL,..."
// entries) under the token and returns the initial cluster
// ("name=url,name=url,...") once the cluster's size have registered.
// Transient failures of the discovery service are retried, backing off
// as etcd does (1 s doubling to 256 s), until ctx ends.
func Join(ctx context.Context, lg *slog.Logger, cfg Config, memberID uint64, self string) (string, error) {
	c, err := cfg.client()
	if err != nil {
		return "", err
	}
	defer c.Close()
	d := &discovery{c: c, cfg: cfg, lg: lg.With("discovery-token", cfg.Token, "discovery-endpoints", strings.Join(cfg.Endpoints, ",")),
		self: path.Join(prefix, cfg.Token, "members", strconv.FormatUint(memberID, 16))}
	if _, _, _, err := d.check(ctx); err != nil {
		return "", err
	}
	if err := retry(ctx, d, "register member itself", func(ctx context.Context) error {
		_, err := c.Put(ctx, d.self, self)
		return err
	}); err != nil {
		return "", err
	}
	d.lg.Info("register member itself successfully", "memberKey", d.self, "memberInfo", self)
	ms, size, rev, err := d.check(ctx)
	if errors.Is(err, ErrFullCluster) {
		// Beyond etcd: take the registration back, so a member that did
		// not make it into the cluster leaves no key behind.
		dctx, cancel := context.WithTimeout(context.Background(), cfg.RequestTimeout)
		if _, derr := c.Delete(dctx, d.self); derr == nil {
			d.lg.Warn("discovery: the cluster is full; removed this member's registration", "memberKey", d.self)
		}
		cancel()
	}
	if err != nil {
		return "", err
	}
	if len(ms) < size {
		d.lg.Info("waiting for peers from discovery service", "clusterSize", size, "found-peers", len(ms))
		if ms, err = d.wait(ctx, ms, size, rev); err != nil {
			return "", err
		}
		d.lg.Info("found all needed peers from discovery service", "clusterSize", size, "found-peers", len(ms))
	}
	var parts []string
	for _, m := range ms[:size] {
		parts = append(parts, m.urls)
	}
	s := strings.Join(parts, ",")
	if err := validCluster(s); err != nil {
		return s, err
	}
	d.lg.Info("discovery joined cluster successfully", "cluster", s)
	return s, nil
}

type discovery struct {
	c    *clientv3.Client
	cfg  Config
	lg   *slog.Logger
	self string
}

// check reads the size and the registered members: ErrFullCluster if
// size members registered before this one.
func (d *discovery) check(ctx context.Context) (ms []member, size int, rev int64, err error) {
	err = retry(ctx, d, "cluster status check", func(ctx context.Context) error {
		resp, err := d.c.Get(ctx, path.Join(prefix, d.cfg.Token, "_config/size"))
		if err != nil {
			return err
		}
		if len(resp.Kvs) == 0 {
			return permanent{ErrSizeNotFound}
		}
		n, perr := strconv.ParseInt(string(resp.Kvs[0].Value), 10, 0)
		if perr != nil || n <= 0 {
			return permanent{ErrBadSizeKey}
		}
		size = int(n)
		mresp, err := d.c.Get(ctx, path.Join(prefix, d.cfg.Token, "members"), clientv3.WithPrefix())
		if err != nil {
			return err
		}
		ms = ms[:0]
		for _, kv := range mresp.Kvs {
			ms = d.add(ms, string(kv.Key), string(kv.Value), kv.CreateRevision)
		}
		rev = mresp.Header.Revision
		return nil
	})
	if err != nil {
		return nil, 0, 0, err
	}
	for i, m := range ms {
		if m.key == d.self {
			break
		}
		if i >= size-1 {
			return ms, size, rev, ErrFullCluster
		}
	}
	return ms, size, rev, nil
}

// add records a registration, ignoring malformed and duplicate ones as
// etcd does, keeping them in creation order.
func (d *discovery) add(ms []member, key, value string, rev int64) []member {
	key, value = strings.TrimSpace(key), strings.TrimSpace(value)
	switch {
	case !strings.HasPrefix(key, path.Join(prefix, d.cfg.Token, "members")):
		d.lg.Warn("invalid peer registry key", "memberKey", key)
		return ms
	case !strings.ContainsRune(value, '='):
		d.lg.Warn("invalid peer info returned from discovery service", "memberKey", key, "memberInfo", value)
		return ms
	}
	for _, m := range ms {
		if m.key == key {
			d.lg.Warn("found duplicate peer from discovery service", "memberKey", key)
			return ms
		}
	}
	d.lg.Info("found peer from discovery service", "memberKey", key, "memberInfo", value)
	ms = append(ms, member{key: key, urls: value, rev: rev})
	sort.SliceStable(ms, func(i, j int) bool { return ms[i].rev < ms[j].rev })
	return ms
}

// wait watches the members' keys from rev until size have registered.
func (d *discovery) wait(ctx context.Context, ms []member, size int, rev int64) ([]member, error) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for {
		w := d.c.Watch(clientv3.WithRequireLeader(wctx), path.Join(prefix, d.cfg.Token, "members"), clientv3.WithPrefix(), clientv3.WithRev(rev+1))
		for wresp := range w {
			if err := wresp.Err(); err != nil {
				break
			}
			for _, ev := range wresp.Events {
				if ev.Type == clientv3.EventTypePut {
					ms = d.add(ms, string(ev.Kv.Key), string(ev.Kv.Value), ev.Kv.CreateRevision)
				}
				rev = ev.Kv.ModRevision
			}
			if len(ms) >= size {
				return ms, nil
			}
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		time.Sleep(time.Second) // the watch broke: open it again where it stopped
	}
}

// permanent marks an answer that retrying cannot change.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// retry runs f with the request timeout until it succeeds or fails
// permanently, backing off 1 s, 2 s, ... up to 256 s between attempts.
func retry(ctx context.Context, d *discovery, step string, f func(context.Context) error) error {
	for n := 1; ; n++ {
		rctx, cancel := context.WithTimeout(ctx, d.cfg.RequestTimeout)
		err := f(rctx)
		cancel()
		var p permanent
		switch {
		case err == nil:
			return nil
		case errors.As(err, &p):
			return p.error
		case ctx.Err() != nil:
			return err
		}
		backoff := time.Duration(1<<min(n, 8)) * time.Second
		d.lg.Warn("retry connecting to discovery service", "reason", step, "backoff", backoff, "error", err.Error())
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return err
		}
	}
}

// validCluster checks an initial cluster string parses as etcd's URLs
// map ("name=url,...": every entry a name and a URL with a scheme and
// host).
func validCluster(s string) error {
	for _, part := range strings.Split(s, ",") {
		name, u, ok := strings.Cut(part, "=")
		if !ok || name == "" || !strings.Contains(u, "://") {
			return ErrInvalidURL
		}
	}
	return nil
}
