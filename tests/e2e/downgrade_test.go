package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/internal/testcluster"
)

// TestDowngrade: Maintenance.Downgrade on a cluster whose members all
// run one version answers as etcd 3.7.3 does (the test passes against
// it): only 3.6 validates; bad formats and other targets are refused with
// etcd's errors; enable records the target, which becomes the cluster
// version in /version and Status; validate and enable are then refused;
// cancel clears it and the cluster version is 3.7 again; cancel with
// nothing enabled still succeeds, as in etcd.
func TestDowngrade(t *testing.T) {
	m, cli, ctx := start(t)
	dg := func(action clientv3.DowngradeAction, v string) (*clientv3.DowngradeResponse, error) {
		return cli.Downgrade(ctx, action, v)
	}
	resp, err := dg(clientv3.DowngradeValidate, "3.6")
	if err != nil || resp.Version != "3.7" {
		t.Fatalf("validate 3.6: %v, %v; want version 3.7", resp, err)
	}
	if resp.Header == nil || resp.Header.MemberId == 0 {
		t.Errorf("validate 3.6: no header: %v", resp)
	}
	for _, c := range []struct {
		v    string
		want error
	}{
		{"3.5", rpctypes.ErrInvalidDowngradeTargetVersion},
		{"3.7", rpctypes.ErrInvalidDowngradeTargetVersion},
		{"4.6", rpctypes.ErrInvalidDowngradeTargetVersion},
		{"3", rpctypes.ErrWrongDowngradeVersionFormat},
		{"three", rpctypes.ErrWrongDowngradeVersionFormat},
		{"", rpctypes.ErrWrongDowngradeVersionFormat},
	} {
		for _, action := range []clientv3.DowngradeAction{clientv3.DowngradeValidate, clientv3.DowngradeEnable} {
			if _, err := dg(action, c.v); !errors.Is(err, c.want) {
				t.Errorf("downgrade %v %q: %v, want %v", action, c.v, err, c.want)
			}
		}
	}
	if _, err := dg(clientv3.DowngradeValidate, "3.6.2"); err != nil {
		t.Errorf("validate 3.6.2: %v (the patch is ignored)", err)
	}
	if resp, err := dg(clientv3.DowngradeCancel, ""); err != nil || resp.Version != "3.7" {
		t.Errorf("cancel with no downgrade: %v, %v; want success, version 3.7", resp, err)
	}

	if resp, err := dg(clientv3.DowngradeEnable, "3.6"); err != nil || resp.Version != "3.7" {
		t.Fatalf("enable 3.6: %v, %v", resp, err)
	}
	// etcd's leader adopts the target as the cluster version within a
	// few seconds; Cairn on apply.
	waitClusterVersion(t, ctx, m, "3.6.0")
	st, err := cli.Status(ctx, m.ClientURL)
	if err != nil {
		t.Fatal(err)
	}
	if d := st.DowngradeInfo; d == nil || !d.Enabled || d.TargetVersion != "3.6.0" {
		t.Errorf("Status.DowngradeInfo while enabled: %v", d)
	}
	for _, action := range []clientv3.DowngradeAction{clientv3.DowngradeValidate, clientv3.DowngradeEnable} {
		if _, err := dg(action, "3.6"); !errors.Is(err, rpctypes.ErrInvalidDowngradeTargetVersion) {
			t.Errorf("downgrade %v 3.6 while enabled: %v, want %v (the cluster version is 3.6 now)", action, err, rpctypes.ErrInvalidDowngradeTargetVersion)
		}
	}
	if _, err := dg(clientv3.DowngradeValidate, "3.5"); !errors.Is(err, rpctypes.ErrDowngradeInProcess) {
		t.Errorf("validate 3.5 while enabled: %v, want %v", err, rpctypes.ErrDowngradeInProcess)
	}
	if _, err := dg(clientv3.DowngradeCancel, ""); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	waitClusterVersion(t, ctx, m, "3.7.0")
	st, err = cli.Status(ctx, m.ClientURL)
	if err != nil {
		t.Fatal(err)
	}
	if d := st.DowngradeInfo; d == nil || d.Enabled {
		t.Errorf("Status.DowngradeInfo after cancel: %v", d)
	}
}

// waitClusterVersion waits until /version reports the cluster version.
func waitClusterVersion(t *testing.T, ctx context.Context, m *testcluster.Member, want string) {
	t.Helper()
	var got string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m.ClientURL+"/version", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var v struct {
			Cluster string `json:"etcdcluster"`
		}
		err = json.NewDecoder(resp.Body).Decode(&v)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got = v.Cluster; got == want {
			return
		}
	}
	t.Fatalf("/version etcdcluster is %q, want %q", got, want)
}
