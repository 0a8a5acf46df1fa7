package ctl

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/spf13/cobra"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The endpoint commands, and the walk over endpoints one at a time that
// they share with defrag.

// endpointOptions are the flags of the endpoint commands.
type endpointOptions struct {
	cluster bool  // ask the member list for every member's client URLs
	hashRev int64 // hashkv --rev
}

func (c *ctl) newEndpointCommand() *cobra.Command {
	o := &endpointOptions{}
	health := &cobra.Command{
		Use:   "health",
		Short: "Checks the healthiness of endpoints specified in `--endpoints` flag",
		Run:   c.run(func(cmd *cobra.Command, _ []string) error { return c.endpointHealth(cmd, o) }),
	}
	status := &cobra.Command{
		Use:   "status",
		Short: "Prints out the status of endpoints specified in `--endpoints` flag",
		Long: `When --write-out is set to simple, this command prints out comma-separated status lists for each endpoint.
The items in the lists are endpoint, ID, version, db size, is leader, is learner, raft term, raft index, raft applied index, errors.
`,
		Run: c.run(func(cmd *cobra.Command, _ []string) error { return c.endpointStatus(cmd, o) }),
	}
	hashkv := &cobra.Command{
		Use:   "hashkv",
		Short: "Prints the KV history hash for each endpoint in --endpoints",
		Run:   c.run(func(cmd *cobra.Command, _ []string) error { return c.endpointHashKV(cmd, o) }),
	}
	hashkv.PersistentFlags().Int64Var(&o.hashRev, "rev", 0, "maximum revision to hash (default: latest revision)")
	ec := newGroupCommand("endpoint", "Endpoint", groupClusterMaintenance, health, status, hashkv)
	ec.PersistentFlags().BoolVar(&o.cluster, "cluster", false, "use all endpoints from the cluster member list")
	return ec
}

// endpointTargets prepares a command that visits endpoints one by one: the
// client config (as clientConfig makes it) and the endpoints to visit (see
// endpointsToCheck). cluster is --cluster, read only after clientConfig,
// because ETCDCTL_CLUSTER can set it.
func (c *ctl) endpointTargets(cmd *cobra.Command, cluster *bool) (*clientv3.ConfigSpec, []string, error) {
	spec, err := c.clientConfig(cmd)
	if err != nil {
		return nil, nil, err
	}
	eps, err := c.endpointsToCheck(*cluster, spec)
	if err != nil {
		return nil, nil, err
	}
	return spec, eps, nil
}

// endpointsToCheck is --endpoints as given, or with --cluster every client
// URL in the member list fetched through them. spec supplies credentials, so
// the user is asked for a password at most once.
func (c *ctl) endpointsToCheck(cluster bool, spec *clientv3.ConfigSpec) ([]string, error) {
	if !cluster {
		return c.global.endpoints, nil
	}
	eps, err := c.endpoints()
	if err != nil {
		return nil, fail(exitError, err)
	}
	lg, _ := newLogger()
	cfg, err := clientv3.NewClientConfig(&clientv3.ConfigSpec{
		Endpoints:        eps,
		DialTimeout:      c.global.dialTimeout,
		KeepAliveTime:    c.global.keepAliveTime,
		KeepAliveTimeout: c.global.keepAliveTimeout,
		Secure:           c.secureConfig(),
		Auth:             spec.Auth,
	}, lg)
	if err != nil {
		return nil, fail(exitError, err)
	}
	cli, err := clientv3.New(*cfg)
	if err != nil {
		return nil, fail(exitError, err)
	}
	defer cli.Close()
	ctx, cancel := c.commandCtx()
	defer cancel()
	members, err := cli.MemberList(ctx)
	if err != nil {
		return nil, failf(exitError, "failed to fetch endpoints from etcd cluster member list: %w", err)
	}
	var urls []string
	for _, m := range members.Members {
		urls = append(urls, m.ClientURLs...)
	}
	return urls, nil
}

// eachEndpoint calls visit for each endpoint to check, in order, with a
// client connected to that endpoint alone and a context bounded by
// --command-timeout. visit reports its own request's failure and the walk
// goes on; eachEndpoint fails only when it cannot make a client, and then
// stops there.
func (c *ctl) eachEndpoint(cmd *cobra.Command, cluster *bool, visit func(ctx context.Context, cli *clientv3.Client, ep string)) error {
	spec, eps, err := c.endpointTargets(cmd, cluster)
	if err != nil {
		return err
	}
	for _, ep := range eps {
		spec.Endpoints = []string{ep}
		cli, err := connect(spec)
		if err != nil {
			return err
		}
		ctx, cancel := c.commandCtx()
		visit(ctx, cli, ep)
		cancel()
		cli.Close()
	}
	return nil
}

// endpointHealth reads a key through each endpoint concurrently; an endpoint
// is healthy if the read commits (or is merely denied) and it has no alarm.
func (c *ctl) endpointHealth(cmd *cobra.Command, o *endpointOptions) error {
	lg, err := newLogger()
	if err != nil {
		return fail(exitError, err)
	}
	spec, eps, err := c.endpointTargets(cmd, &o.cluster)
	if err != nil {
		return err
	}
	var cfgs []*clientv3.Config
	for _, ep := range eps {
		one := spec.Clone()
		one.Endpoints = []string{ep}
		cfg, err := newConfig(one)
		if err != nil {
			return err
		}
		cfgs = append(cfgs, cfg)
	}

	var wg sync.WaitGroup
	results := make(chan epHealth, len(cfgs))
	for _, cfg := range cfgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cfg.Logger = lg.Named("client")
			results <- c.checkHealth(cfg)
		}()
	}
	wg.Wait()
	close(results)

	var hs []epHealth
	unhealthy := false
	for h := range results {
		hs = append(hs, h)
		unhealthy = unhealthy || h.Error != ""
	}
	if err := c.display.EndpointHealth(hs); err != nil {
		return err
	}
	if unhealthy {
		return failf(exitError, "unhealthy cluster")
	}
	return nil
}

func (c *ctl) checkHealth(cfg *clientv3.Config) epHealth {
	ep := cfg.Endpoints[0]
	cli, err := clientv3.New(*cfg)
	if err != nil {
		return epHealth{Ep: ep, Error: err.Error()}
	}
	defer cli.Close()
	start := time.Now()
	ctx, cancel := c.commandCtx()
	defer cancel()
	// Any key will do: a linearizable read goes through consensus.
	_, err = cli.Get(ctx, "health")
	h := epHealth{Ep: ep, Took: time.Since(start).String()}
	// Permission denied still proves the read went through consensus.
	if err == nil || errors.Is(err, rpctypes.ErrPermissionDenied) {
		h.Health = true
	} else {
		h.Error = err.Error()
	}
	if h.Health {
		resp, err := cli.AlarmList(ctx)
		switch {
		case err != nil:
			h.Health, h.Error = false, "Unable to fetch the alarm list"
		case len(resp.Alarms) > 0:
			h.Health, h.Error = false, "Active Alarm(s): "
			for _, a := range resp.Alarms {
				switch a.Alarm {
				case pb.AlarmType_NOSPACE:
					h.Error += "NOSPACE "
				case pb.AlarmType_CORRUPT:
					h.Error += "CORRUPT "
				default:
					h.Error += "UNKNOWN "
				}
			}
		}
	}
	return h
}

// endpointStatus asks each endpoint for its status in turn. A failing
// endpoint is reported on stderr and makes the exit code 1, but the others
// are still printed.
func (c *ctl) endpointStatus(cmd *cobra.Command, o *endpointOptions) error {
	var (
		sts    []epStatus
		failed bool
	)
	err := c.eachEndpoint(cmd, &o.cluster, func(ctx context.Context, cli *clientv3.Client, ep string) {
		resp, err := cli.Status(ctx, ep)
		if err != nil {
			failed = true
			fmt.Fprintf(c.stderr, "Failed to get the status of endpoint %s (%v)\n", ep, err)
			return
		}
		sts = append(sts, epStatus{Ep: ep, Resp: resp})
	})
	if err != nil {
		return err
	}
	if err := c.display.EndpointStatus(sts); err != nil {
		return err
	}
	if failed {
		return &exitErr{code: exitError}
	}
	return nil
}

// endpointHashKV asks each endpoint for its KV hash in turn. Failures are
// reported as endpointStatus reports them, and the last one is also the
// command's error.
func (c *ctl) endpointHashKV(cmd *cobra.Command, o *endpointOptions) error {
	var (
		hs      []epHashKV
		lastErr error
	)
	err := c.eachEndpoint(cmd, &o.cluster, func(ctx context.Context, cli *clientv3.Client, ep string) {
		resp, err := cli.HashKV(ctx, ep, o.hashRev)
		if err != nil {
			lastErr = err
			fmt.Fprintf(c.stderr, "Failed to get the hash of endpoint %s (%v)\n", ep, err)
			return
		}
		hs = append(hs, epHashKV{Ep: ep, Resp: resp})
	})
	if err != nil {
		return err
	}
	if err := c.display.EndpointHashKV(hs); err != nil {
		return err
	}
	if lastErr != nil {
		return fail(exitError, lastErr)
	}
	return nil
}
