package ctl

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/spf13/cobra"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func (c *ctl) newCompactionCommand() *cobra.Command {
	var physical bool
	cmd := &cobra.Command{
		Use:     "compaction [options] <revision>",
		Short:   "Compacts the event history in etcd",
		GroupID: groupKV,
		Run: c.run(func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return failf(exitBadArgs, "compaction command needs 1 argument")
			}
			rev, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil {
				return fail(exitError, err)
			}
			var opts []clientv3.CompactOption
			if physical {
				opts = append(opts, clientv3.WithCompactPhysical())
			}
			cli, err := c.newClient(cmd)
			if err != nil {
				return err
			}
			ctx, cancel := c.commandCtx()
			_, err = cli.Compact(ctx, rev, opts...)
			cancel()
			if err != nil {
				return fail(exitError, err)
			}
			fmt.Fprintln(c.stdout, "compacted revision", rev)
			return nil
		}),
	}
	cmd.Flags().BoolVar(&physical, "physical", false, "'true' to wait for compaction to physically remove all old revisions")
	return cmd
}

// endpointOptions are the flags of the endpoint commands.
type endpointOptions struct {
	cluster bool  // ask the member list for every member's client URLs
	hashRev int64 // hashkv --rev
}

func (c *ctl) newEndpointCommand() *cobra.Command {
	o := &endpointOptions{}
	ec := &cobra.Command{
		Use:     "endpoint <subcommand>",
		Short:   "Endpoint related commands. Use `" + cliName + " endpoint --help` to see subcommands",
		Long:    "Endpoint related commands",
		GroupID: groupClusterMaintenance,
	}
	ec.PersistentFlags().BoolVar(&o.cluster, "cluster", false, "use all endpoints from the cluster member list")

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
	ec.AddCommand(health, status, hashkv)
	return ec
}

// endpointsToCheck is --endpoints as given, or with --cluster every client
// URL in the member list fetched through them. spec supplies credentials, so
// the user is asked for a password at most once.
func (c *ctl) endpointsToCheck(o *endpointOptions, spec *clientv3.ConfigSpec) ([]string, error) {
	if !o.cluster {
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

// endpointHealth reads a key through each endpoint concurrently; an endpoint
// is healthy if the read commits (or is merely denied) and it has no alarm.
func (c *ctl) endpointHealth(cmd *cobra.Command, o *endpointOptions) error {
	lg, err := newLogger()
	if err != nil {
		return fail(exitError, err)
	}
	spec, err := c.clientConfig(cmd)
	if err != nil {
		return err
	}
	eps, err := c.endpointsToCheck(o, spec)
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
	spec, err := c.clientConfig(cmd)
	if err != nil {
		return err
	}
	eps, err := c.endpointsToCheck(o, spec)
	if err != nil {
		return err
	}
	var (
		sts    []epStatus
		failed bool
	)
	for _, ep := range eps {
		spec.Endpoints = []string{ep}
		cli, err := connect(spec)
		if err != nil {
			return err
		}
		ctx, cancel := c.commandCtx()
		resp, err := cli.Status(ctx, ep)
		cancel()
		cli.Close()
		if err != nil {
			failed = true
			fmt.Fprintf(c.stderr, "Failed to get the status of endpoint %s (%v)\n", ep, err)
			continue
		}
		sts = append(sts, epStatus{Ep: ep, Resp: resp})
	}
	if err := c.display.EndpointStatus(sts); err != nil {
		return err
	}
	if failed {
		return &exitErr{code: exitError}
	}
	return nil
}

// endpointHashKV asks each endpoint for its KV hash in turn.
func (c *ctl) endpointHashKV(cmd *cobra.Command, o *endpointOptions) error {
	spec, err := c.clientConfig(cmd)
	if err != nil {
		return err
	}
	eps, err := c.endpointsToCheck(o, spec)
	if err != nil {
		return err
	}
	var (
		hs      []epHashKV
		lastErr error
	)
	for _, ep := range eps {
		spec.Endpoints = []string{ep}
		cli, err := connect(spec)
		if err != nil {
			return err
		}
		ctx, cancel := c.commandCtx()
		resp, err := cli.HashKV(ctx, ep, o.hashRev)
		cancel()
		cli.Close()
		if err != nil {
			lastErr = err
			fmt.Fprintf(c.stderr, "Failed to get the hash of endpoint %s (%v)\n", ep, err)
			continue
		}
		hs = append(hs, epHashKV{Ep: ep, Resp: resp})
	}
	if err := c.display.EndpointHashKV(hs); err != nil {
		return err
	}
	if lastErr != nil {
		return fail(exitError, lastErr)
	}
	return nil
}
