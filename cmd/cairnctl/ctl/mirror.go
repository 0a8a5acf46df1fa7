package ctl

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/mirror"
)

// mirrorReportInterval is how often make-mirror prints how many keys it has
// copied, as etcdctl does.
const mirrorReportInterval = 30 * time.Second

// mirrorOptions are make-mirror's flags.
type mirrorOptions struct {
	prefix       string
	destPrefix   string
	noDestPrefix bool
	rev          int64
	maxTxnOps    uint

	destCert, destKey, destCACert string
	destInsecure                  bool
	destUser, destPassword        string
}

func (c *ctl) newMakeMirrorCommand() *cobra.Command {
	o := &mirrorOptions{}
	cmd := &cobra.Command{
		Use:     "make-mirror [options] <destination>",
		Short:   "Makes a mirror at the destination etcd cluster",
		GroupID: groupUtility,
		Run:     c.run(func(cmd *cobra.Command, args []string) error { return c.makeMirror(cmd, o, args) }),
	}
	fs := cmd.Flags()
	fs.StringVar(&o.prefix, "prefix", "", "Key-value prefix to mirror")
	fs.Int64Var(&o.rev, "rev", 0, "Specify the kv revision to start to mirror")
	fs.UintVar(&o.maxTxnOps, "max-txn-ops", 128, "Maximum number of operations permitted in a transaction during syncing updates.")
	fs.StringVar(&o.destPrefix, "dest-prefix", "", "destination prefix to mirror a prefix to a different prefix in the destination cluster")
	fs.BoolVar(&o.noDestPrefix, "no-dest-prefix", false, "mirror key-values to the root of the destination cluster")
	fs.StringVar(&o.destCert, "dest-cert", "", "Identify secure client using this TLS certificate file for the destination cluster")
	fs.StringVar(&o.destKey, "dest-key", "", "Identify secure client using this TLS key file")
	fs.StringVar(&o.destCACert, "dest-cacert", "", "Verify certificates of TLS enabled secure servers using this CA bundle")
	fs.BoolVar(&o.destInsecure, "dest-insecure-transport", true, "Disable transport security for client connections")
	fs.StringVar(&o.destUser, "dest-user", "", "Destination username[:password] for authentication (prompt if password is not supplied)")
	fs.StringVar(&o.destPassword, "dest-password", "", "Destination password for authentication (if this option is used, --user option shouldn't include password)")
	return cmd
}

// destAuth resolves --dest-user and --dest-password as authConfig resolves
// the source's, prompting for the password when --dest-user has none.
func (c *ctl) destAuth(o *mirrorOptions) (*clientv3.AuthConfig, error) {
	switch {
	case o.destUser == "":
		return nil, nil
	case o.destPassword != "":
		return &clientv3.AuthConfig{Username: o.destUser, Password: o.destPassword}, nil
	}
	if name, pass, ok := strings.Cut(o.destUser, ":"); ok {
		return &clientv3.AuthConfig{Username: name, Password: pass}, nil
	}
	pass, err := askPassword(c.stdin, c.stdout, "Destination Password: ")
	if err != nil {
		return nil, fail(exitError, err)
	}
	return &clientv3.AuthConfig{Username: o.destUser, Password: pass}, nil
}

// makeMirror reads the source's configuration, connects to the
// destination and the source, refuses a mirror that would feed on itself,
// and mirrors until the source's watch fails. Only a failure ends it: the
// exit code is always an error's, as in etcdctl.
func (c *ctl) makeMirror(cmd *cobra.Command, o *mirrorOptions, args []string) error {
	if len(args) != 1 {
		return failf(exitBadArgs, "make-mirror takes one destination argument")
	}
	// The destination takes the connection flags as given on the command
	// line: etcdctl reads them before applying ETCDCTL_* variables, which
	// are meant for the source.
	g := c.global
	auth, err := c.destAuth(o)
	if err != nil {
		return err
	}
	// etcdctl connects to the destination before it reads the source's
	// configuration; cairnctl reads it first, because that is where the
	// gRPC logger is set, which must not change under a live connection.
	// Only the order of a warning about an ETCDCTL_* variable and a
	// failure to configure the destination can tell.
	spec, err := c.clientConfig(cmd)
	if err != nil {
		return err
	}
	dst, err := connect(&clientv3.ConfigSpec{
		Endpoints:          []string{args[0]},
		DialTimeout:        g.dialTimeout,
		KeepAliveTime:      g.keepAliveTime,
		KeepAliveTimeout:   g.keepAliveTimeout,
		MaxCallSendMsgSize: g.maxCallSendMsgSize,
		MaxCallRecvMsgSize: g.maxCallRecvMsgSize,
		Secure: &clientv3.SecureConfig{
			Cert:              o.destCert,
			Key:               o.destKey,
			Cacert:            o.destCACert,
			InsecureTransport: o.destInsecure,
		},
		Auth: auth,
	})
	if err != nil {
		return err
	}
	defer dst.Close()
	src, err := connect(spec)
	if err != nil {
		return err
	}
	defer src.Close()

	m, err := newMirrorer(o, src, dst)
	if err != nil {
		return err
	}
	ctx := context.Background()
	if err := m.refuseLoop(ctx); err != nil {
		return err
	}
	stop := c.every(mirrorReportInterval, func() { fmt.Fprintln(c.stdout, m.total.Load()) })
	defer stop()
	return fail(exitError, m.run(ctx, o.rev))
}

// every calls f every interval until the returned stop is called, and stop
// returns once f is no longer running.
func (c *ctl) every(interval time.Duration, f func()) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				f()
			case <-done:
				return
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

// newMirrorer checks the prefix flags and maps them to a mirrorer.
func newMirrorer(o *mirrorOptions, src, dst *clientv3.Client) (*mirrorer, error) {
	if o.noDestPrefix && o.destPrefix != "" {
		return nil, failf(exitBadArgs, "`--dest-prefix` and `--no-dest-prefix` cannot be set at the same time, choose one")
	}
	m := &mirrorer{src: src, dst: dst, prefix: o.prefix, destPrefix: o.destPrefix, maxTxnOps: int(o.maxTxnOps)}
	if !o.noDestPrefix && o.destPrefix == "" {
		// Keys keep their prefix. etcdctl makes this default only when it
		// copies the existing keys, so that with --rev it strips the
		// prefix instead (mirroring /a/x to /x); that contradicts its own
		// help, and a mirror resumed with --rev would write elsewhere than
		// the one it resumes, so cairnctl makes it in both cases.
		m.destPrefix = o.prefix
	}
	return m, nil
}

// mirrorer copies the keys under prefix in src to dst, with prefix
// replaced by destPrefix, and then follows src's changes.
type mirrorer struct {
	src, dst   *clientv3.Client
	prefix     string
	destPrefix string
	maxTxnOps  int // at most this many operations in one transaction; 0 for no limit

	total atomic.Int64 // keys put or deleted in dst so far
}

// errWatchEnded reports that the source's watch channel closed without a
// compaction. etcdctl then exits with "Error: <nil>".
var errWatchEnded = errors.New("the watch on the source cluster ended")

// refuseLoop fails when dst is src's own cluster and the destination range
// overlaps the source range: every key written would be an event to mirror
// again, so the mirror would feed on itself forever. etcdctl has no such
// check. Two ranges given by prefixes overlap exactly when one prefix
// starts with the other (the empty prefix is the whole key space). The
// cluster is recognised by its ID, which a member derives from the
// members' names and peer URLs and the cluster token: two clusters
// bootstrapped with identical ones are taken for one, which
// --initial-cluster-token exists to prevent. The check writes nothing, so
// a refused mirror leaves both clusters as they were.
func (m *mirrorer) refuseLoop(ctx context.Context) error {
	if !strings.HasPrefix(m.prefix, m.destPrefix) && !strings.HasPrefix(m.destPrefix, m.prefix) {
		return nil
	}
	srcID, err := clusterID(ctx, m.src)
	if err != nil {
		return fail(exitError, err)
	}
	dstID, err := clusterID(ctx, m.dst)
	if err != nil {
		return fail(exitError, err)
	}
	if srcID != dstID {
		return nil
	}
	return failf(exitBadArgs, "destination prefix %q overlaps source prefix %q in the same cluster (%x): the mirror would copy its own writes forever",
		m.destPrefix, m.prefix, srcID)
}

// clusterID asks cli's cluster for its ID. The member list needs no
// permission, so it works for any user the mirror runs as.
func clusterID(ctx context.Context, cli *clientv3.Client) (uint64, error) {
	resp, err := cli.MemberList(ctx)
	if err != nil {
		return 0, err
	}
	return resp.Header.GetClusterId(), nil
}

// destKey maps a source key to its destination key.
func (m *mirrorer) destKey(key []byte) string {
	return m.destPrefix + strings.TrimPrefix(string(key), m.prefix)
}

// run copies the existing keys, unless rev is set, and then applies src's
// changes from rev (or from just after the copy) on, one transaction per
// source revision (split when it has more than maxTxnOps changes), until
// the watch fails. It returns why it stopped.
func (m *mirrorer) run(ctx context.Context, rev int64) error {
	s := mirror.NewSyncer(m.src, m.prefix, max(rev-1, 0))
	if rev <= 1 {
		rc, errc := s.SyncBase(ctx)
		for r := range rc {
			for _, kv := range r.Kvs {
				if _, err := m.dst.Put(ctx, m.destKey(kv.Key), string(kv.Value)); err != nil {
					return err
				}
				m.total.Add(1)
			}
		}
		if err := <-errc; err != nil {
			return err
		}
	}

	for wr := range s.SyncUpdates(ctx) {
		if wr.CompactRevision != 0 {
			return rpctypes.ErrCompacted
		}
		var (
			ops     []clientv3.Op
			lastRev int64
		)
		flush := func() error {
			if len(ops) == 0 {
				return nil
			}
			_, err := m.dst.Txn(ctx).Then(ops...).Commit()
			ops = ops[:0]
			return err
		}
		for _, ev := range wr.Events {
			if r := ev.Kv.ModRevision; r != lastRev || (m.maxTxnOps > 0 && len(ops) == m.maxTxnOps) {
				if err := flush(); err != nil {
					return err
				}
				lastRev = r
			}
			switch ev.Type {
			case mvccpb.PUT:
				ops = append(ops, clientv3.OpPut(m.destKey(ev.Kv.Key), string(ev.Kv.Value)))
			case mvccpb.DELETE:
				ops = append(ops, clientv3.OpDelete(m.destKey(ev.Kv.Key)))
			default:
				return fmt.Errorf("unexpected event type %v", ev.Type)
			}
			m.total.Add(1)
		}
		if err := flush(); err != nil {
			return err
		}
	}
	return errWatchEnded
}
