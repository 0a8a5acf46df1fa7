package cluster

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/testcluster"
)

// ctl runs etcdctl against every member of a cluster.
type ctl struct {
	t    *testing.T
	path string
	c    *testcluster.Cluster
}

func (c ctl) try(args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args = append([]string{"--endpoints=" + strings.Join(c.c.Endpoints(), ","), "--command-timeout=10s"}, args...)
	cmd := exec.CommandContext(ctx, c.path, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ETCDCTL_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// run runs etcdctl, failing the test if it fails.
func (c ctl) run(args ...string) string {
	c.t.Helper()
	out, errOut, err := c.try(args...)
	if err != nil {
		c.t.Fatalf("etcdctl %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// runRetrying runs etcdctl until it succeeds or fails with an error
// other than one of retryOn, for at most 30 seconds.
func (c ctl) runRetrying(retryOn []string, args ...string) string {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, errOut, err := c.try(args...)
		if err == nil {
			return out
		}
		retry := false
		for _, s := range retryOn {
			retry = retry || strings.Contains(errOut, s)
		}
		if !retry || time.Now().After(deadline) {
			c.t.Fatalf("etcdctl %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// tableRows splits an etcdctl table (drawn with ASCII or box-drawing
// characters) into rows of trimmed cells, header first, rules left out.
func tableRows(table string) [][]string {
	var rows [][]string
	for line := range strings.Lines(table) {
		line = strings.TrimSpace(strings.ReplaceAll(line, "│", "|"))
		if !strings.HasPrefix(line, "|") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		rows = append(rows, cells)
	}
	return rows
}

// tableRow is the row of an etcdctl table with a cell equal to s, or nil.
func tableRow(table, s string) []string {
	for _, row := range tableRows(table) {
		if slices.Contains(row, s) {
			return row
		}
	}
	return nil
}

// tableColumn is the index of a column of an etcdctl table by its
// header, or -1.
func tableColumn(table, header string) int {
	if rows := tableRows(table); len(rows) > 0 {
		return slices.Index(rows[0], header)
	}
	return -1
}

// TestEtcdctlClusterCommands drives a three-member cluster with the
// official etcdctl's cluster commands: member list, endpoint status and
// health across the cluster, move-leader, and a learner added, promoted
// and removed.
func TestEtcdctlClusterCommands(t *testing.T) {
	path := testcluster.Etcdctl(t)
	c := testcluster.New(t, testcluster.Config{Size: 3})
	ctl := ctl{t, path, c}
	ids := c.MemberIDs(t)

	list := ctl.run("member", "list", "-w", "table")
	for i, m := range c.Members {
		row := tableRow(list, m.ClientURL)
		want := []string{fmt.Sprintf("%x", ids[i]), "started", m.Name, m.AdvertisePeerURL(), m.ClientURL, "false"}
		if strings.Join(row, "|") != strings.Join(want, "|") {
			t.Errorf("member list -w table: row of %s is %q; want %q\n%s", m.Name, row, want, list)
		}
	}

	leader := c.WaitLeader(t)
	status := ctl.run("endpoint", "status", "--cluster", "-w", "table")
	idCol, leaderCol, learnerCol := tableColumn(status, "ID"), tableColumn(status, "IS LEADER"), tableColumn(status, "IS LEARNER")
	if idCol < 0 || leaderCol < 0 || learnerCol < 0 {
		t.Fatalf("endpoint status -w table has no ID, IS LEADER or IS LEARNER column:\n%s", status)
	}
	for i, m := range c.Members {
		row := tableRow(status, m.ClientURL)
		if row == nil {
			t.Errorf("endpoint status --cluster has no row for %s:\n%s", m.ClientURL, status)
			continue
		}
		if row[idCol] != fmt.Sprintf("%x", ids[i]) || row[leaderCol] != strconv.FormatBool(i == leader) || row[learnerCol] != "false" {
			t.Errorf("endpoint status --cluster: row of %s (leader %s) is %q:\n%s", m.Name, c.Members[leader].Name, row, status)
		}
	}

	health := ctl.run("endpoint", "health", "--cluster")
	for _, m := range c.Members {
		if !strings.Contains(health, m.ClientURL+" is healthy") {
			t.Errorf("endpoint health --cluster does not call %s healthy:\n%s", m.ClientURL, health)
		}
	}

	target := (leader + 1) % len(c.Members)
	out := ctl.run("move-leader", fmt.Sprintf("%x", ids[target]))
	if want := fmt.Sprintf("Leadership transferred from %x to %x\n", ids[leader], ids[target]); out != want {
		t.Errorf("move-leader printed %q; want %q", out, want)
	}
	waitFor(t, 10*time.Second, "the new leader leads", func() error {
		st, err := c.Members[target].Status(t.Context())
		if err != nil {
			return err
		}
		if st.Leader != ids[target] {
			return fmt.Errorf("%s says %x leads", c.Members[target].Name, st.Leader)
		}
		return nil
	})
	if l := c.WaitLeader(t); l != target {
		t.Errorf("after move-leader %s leads; want %s", c.Members[l].Name, c.Members[target].Name)
	}

	// A learner joins with what member add prints, is promoted, and
	// removed.
	m := c.NewJoiningMember()
	out = ctl.runRetrying([]string{"unhealthy cluster"}, "member", "add", m.Name, "--learner", "--peer-urls="+m.AdvertisePeerURL())
	// etcdctl prints IDs here with %16x: padded with spaces, not zeros.
	added := regexp.MustCompile(`(?m)^Member +([0-9a-f]+) added as learner to cluster +([0-9a-f]+)$`).FindStringSubmatch(out)
	initial := regexp.MustCompile(`(?m)^ETCD_INITIAL_CLUSTER="(.*)"$`).FindStringSubmatch(out)
	if added == nil || initial == nil || !strings.Contains(out, `ETCD_INITIAL_CLUSTER_STATE="existing"`) {
		t.Fatalf("member add --learner printed:\n%s", out)
	}
	id, _ := strconv.ParseUint(added[1], 16, 64)
	clusterID, _ := strconv.ParseUint(added[2], 16, 64)
	m.Join(initial[1])
	if got := tableRow(ctl.run("member", "list", "-w", "table"), m.ClientURL); len(got) != 6 || got[0] != added[1] || got[5] != "true" {
		t.Errorf("member list row of the learner: %q; want ID %s, learner", got, added[1])
	}
	status = ctl.run("endpoint", "status", "--cluster", "-w", "table")
	if row := tableRow(status, m.ClientURL); row == nil || row[learnerCol] != "true" {
		t.Errorf("endpoint status --cluster: row of the learner %s is %q; want IS LEARNER true:\n%s", m.Name, row, status)
	}
	out = ctl.runRetrying([]string{"can only promote a learner member which is in sync with leader"}, "member", "promote", added[1])
	if want := fmt.Sprintf("Member %16x promoted in cluster %16x\n", id, clusterID); out != want {
		t.Errorf("member promote printed %q; want %q", out, want)
	}
	out = ctl.runRetrying([]string{"unhealthy cluster"}, "member", "remove", added[1])
	if want := fmt.Sprintf("Member %16x removed from cluster %16x\n", id, clusterID); out != want {
		t.Errorf("member remove printed %q; want %q", out, want)
	}
	select {
	case <-m.Exited():
	case <-time.After(20 * time.Second):
		t.Errorf("removed member %s (%x) still runs 20s later", m.Name, id)
	}
	if list := ctl.run("member", "list"); strings.Contains(list, added[1]) || strings.Count(list, "\n") != 3 {
		t.Errorf("member list after remove:\n%s", list)
	}
}
