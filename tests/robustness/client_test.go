package robustness

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/testcluster"
	"github.com/cairnkv/cairn/internal/testpki"
)

// opTimeout bounds one request. A request that hits it has an unknown
// outcome; short, so a client stuck on a stopped or cut-off member soon
// tries again (elsewhere, by the client's balancer).
const opTimeout = 2 * time.Second

// newClient is a client of every given endpoint with its own
// connections. Keepalives find a member frozen by SIGSTOP, whose kernel
// still holds the TCP connection open, within a couple of seconds.
func newClient(t *testing.T, endpoints []string) *clientv3.Client {
	return newClientTLS(t, nil, endpoints)
}

// newClientTLS is newClient over mutual TLS with tf's client certificate
// (plaintext when tf is nil).
func newClientTLS(t *testing.T, tf *testcluster.TLS, endpoints []string) *clientv3.Client {
	t.Helper()
	cfg := clientv3.Config{
		Endpoints:            endpoints,
		DialTimeout:          2 * time.Second,
		DialKeepAliveTime:    time.Second,
		DialKeepAliveTimeout: time.Second,
		Logger:               zap.NewNop(),
	}
	if tf != nil {
		tc, err := tf.ClientConfig()
		if err != nil {
			t.Fatal(err)
		}
		cfg.TLS = tc
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		t.Fatalf("robustness: client for %v: %v", endpoints, err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// clusterPKI makes one CA, a member certificate every member serves on
// both ports (SANs 127.0.0.1 and localhost: the client proxies forward
// TLS untouched) and a client certificate.
func clusterPKI(t *testing.T) *testcluster.TLS {
	dir := t.TempDir()
	ca := testpki.NewCA(t, dir, "robustness-ca")
	testpki.WriteBundle(t, filepath.Join(dir, "ca.crt"), ca)
	member := ca.Issue("member", "member", testpki.Opts{})
	client := ca.Issue("client", "client", testpki.Opts{NoSANs: true})
	return &testcluster.TLS{CAFile: filepath.Join(dir, "ca.crt"), CertFile: member.CertFile, KeyFile: member.KeyFile,
		ClientCertFile: client.CertFile, ClientKeyFile: client.KeyFile}
}

// enableCertAuth turns auth on with the client certificate's CN
// ("client", a user with no password) holding the root role, so every
// request of the scenario is authenticated by certificate and every
// write's permission is checked when it is applied.
func enableCertAuth(t *testing.T, cli *clientv3.Client) {
	ctx, cancel := context.WithTimeout(t.Context(), recoverTimeout)
	defer cancel()
	for _, step := range []func() error{
		func() error { _, err := cli.UserAdd(ctx, "root", "robustness"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "root", "root"); return err },
		func() error {
			_, err := cli.UserAddWithOptions(ctx, "client", "", &clientv3.UserAddOptions{NoPassword: true})
			return err
		},
		func() error { _, err := cli.UserGrantRole(ctx, "client", "root"); return err },
		func() error { _, err := cli.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatalf("robustness: enable auth: %v", err)
		}
	}
}

// kvClient is one sequential client of the workload: one request at a
// time, each recorded in the history.
type kvClient struct {
	id  int
	cli *clientv3.Client
	h   *history
	rng *rand.Rand
	seq int
	// modRevs is the newest mod revision this client saw per key, which
	// its CAS requests expect, so that they often succeed.
	modRevs [keyCount]int64
}

func newKVClient(id int, cli *clientv3.Client, h *history) *kvClient {
	return &kvClient{id: id, cli: cli, h: h, rng: rand.New(rand.NewPCG(uint64(id), uint64(time.Now().UnixNano())))}
}

// next picks the next request: mostly reads and CAS, some blind writes
// and deletes. Values are unique over the run (client and sequence), so
// the watch history tells which put any value came from.
func (c *kvClient) next() kvInput {
	key := c.rng.IntN(keyCount)
	c.seq++
	value := fmt.Sprintf("c%d-%d", c.id, c.seq)
	switch p := c.rng.IntN(100); {
	case p < 32:
		return kvInput{Kind: opGet, Key: key}
	case p < 38:
		return kvInput{Kind: opRange}
	case p < 63:
		return kvInput{Kind: opPut, Key: key, Value: value}
	case p < 71:
		return kvInput{Kind: opDelete, Key: key}
	case p < 74:
		return kvInput{Kind: opDeleteRange}
	default:
		return kvInput{Kind: opCAS, Key: key, Value: value, ExpectModRev: c.modRevs[key]}
	}
}

// run issues requests until ctx ends.
func (c *kvClient) run(ctx context.Context) {
	for ctx.Err() == nil {
		c.do(ctx, c.next())
	}
}

// do sends one request and records it. Any error leaves the outcome
// unknown: even a refusal may come after the cluster committed the
// request (a leader change while it waited for the apply, say).
func (c *kvClient) do(ctx context.Context, in kvInput) kvOutput {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	call := c.h.now()
	out, err := send(ctx, c.cli, in)
	ret := c.h.now()
	if err != nil {
		out = kvOutput{Unknown: true}
	}
	if !out.Unknown {
		switch in.Kind {
		case opGet, opCAS:
			c.modRevs[in.Key] = out.ModRev
			if out.Succeeded {
				c.modRevs[in.Key] = out.Rev
			}
		case opRange:
			for k, ks := range out.All {
				c.modRevs[k] = ks.ModRev
			}
		}
	}
	c.h.add(record{Client: c.id, Input: in, Output: out, Call: call, Return: ret})
	return out
}

// send issues in as its etcd request and translates the answer.
func send(ctx context.Context, cli *clientv3.Client, in kvInput) (kvOutput, error) {
	key := keyName(in.Key)
	switch in.Kind {
	case opGet:
		resp, err := cli.Get(ctx, key)
		if err != nil {
			return kvOutput{}, err
		}
		return readOutput(resp), nil
	case opPut:
		resp, err := cli.Put(ctx, key, in.Value)
		if err != nil {
			return kvOutput{}, err
		}
		return kvOutput{Rev: resp.Header.Revision}, nil
	case opDelete:
		resp, err := cli.Delete(ctx, key)
		if err != nil {
			return kvOutput{}, err
		}
		return kvOutput{Rev: resp.Header.Revision, Deleted: resp.Deleted}, nil
	case opRange:
		st, err := readState(ctx, cli)
		if err != nil {
			return kvOutput{}, err
		}
		return kvOutput{Rev: st.Rev, All: st.Keys}, nil
	case opDeleteRange:
		resp, err := cli.Delete(ctx, keyPrefix, clientv3.WithPrefix())
		if err != nil {
			return kvOutput{}, err
		}
		return kvOutput{Rev: resp.Header.Revision, Deleted: resp.Deleted}, nil
	case opCAS:
		resp, err := cli.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", in.ExpectModRev)).
			Then(clientv3.OpPut(key, in.Value)).
			Else(clientv3.OpGet(key)).
			Commit()
		if err != nil {
			return kvOutput{}, err
		}
		if resp.Succeeded {
			return kvOutput{Rev: resp.Header.Revision, Succeeded: true}, nil
		}
		if len(resp.Responses) != 1 || resp.Responses[0].GetResponseRange() == nil {
			return kvOutput{}, fmt.Errorf("robustness: cas else branch answered %v; want one range", resp.Responses)
		}
		out := readOutput((*clientv3.GetResponse)(resp.Responses[0].GetResponseRange()))
		out.Rev = resp.Header.Revision
		return out, nil
	}
	return kvOutput{}, fmt.Errorf("robustness: unknown op kind %d", in.Kind)
}

func readOutput(resp *clientv3.GetResponse) kvOutput {
	out := kvOutput{Rev: resp.Header.Revision}
	if len(resp.Kvs) > 0 {
		kv := resp.Kvs[0]
		out.Found, out.Value, out.ModRev = true, string(kv.Value), kv.ModRevision
	}
	return out
}

// readState reads every key of the workload at once, linearizably.
func readState(ctx context.Context, cli *clientv3.Client) (kvState, error) {
	resp, err := cli.Get(ctx, keyPrefix, clientv3.WithPrefix())
	if err != nil {
		return kvState{}, fmt.Errorf("robustness: read %s*: %w", keyPrefix, err)
	}
	s := kvState{Rev: resp.Header.Revision}
	for _, kv := range resp.Kvs {
		i := keyIndex(string(kv.Key))
		if i < 0 {
			return kvState{}, fmt.Errorf("robustness: unexpected key %q under %s", kv.Key, keyPrefix)
		}
		s.Keys[i] = keyState{Value: string(kv.Value), ModRev: kv.ModRevision}
	}
	return s, nil
}
