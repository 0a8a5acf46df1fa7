package ctl

import (
	"io"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// tablePrinter draws member and endpoint results as boxed tables. It uses
// the tablewriter version etcdctl 3.7.3 builds with (see go.mod), so the
// tables are byte-identical; everything else is unsupported, as in etcdctl.
type tablePrinter struct {
	printer // unsupported fallback
	w       io.Writer
}

func (p *tablePrinter) MemberList(r *clientv3.MemberListResponse) error {
	return p.table(memberListTable(r))
}

func (p *tablePrinter) EndpointHealth(hs []epHealth) error {
	return p.table(endpointHealthTable(hs))
}

func (p *tablePrinter) EndpointStatus(sts []epStatus) error {
	return p.table(endpointStatusTable(sts))
}

func (p *tablePrinter) EndpointHashKV(hs []epHashKV) error {
	return p.table(endpointHashKVTable(hs))
}

// table renders a header and right-aligned rows.
func (p *tablePrinter) table(hdr []string, rows [][]string) error {
	cfg := tablewriter.NewConfigBuilder().WithRowAlignment(tw.AlignRight).Build()
	t := tablewriter.NewTable(p.w, tablewriter.WithConfig(cfg))
	t.Header(hdr)
	for _, row := range rows {
		_ = t.Append(row)
	}
	_ = t.Render()
	return nil
}
