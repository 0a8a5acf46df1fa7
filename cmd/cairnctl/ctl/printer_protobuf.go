package ctl

import (
	"fmt"
	"io"

	"google.golang.org/protobuf/proto"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// protobufPrinter writes each result as its binary protobuf encoding with
// no framing. Results without a wire type (lease responses, which the client
// reshapes) fail with exitBadFeature, and so do endpoint results, as in
// etcdctl.
type protobufPrinter struct {
	messagePrinter
	w, ew io.Writer
}

func newProtobufPrinter(w, ew io.Writer) printer {
	p := &protobufPrinter{w: w, ew: ew}
	p.emit = p.print
	p.endpoint = func(any) error {
		return failf(exitBadFeature, "protobuf not supported as output format")
	}
	return p
}

func (p *protobufPrinter) print(v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return failf(exitBadFeature, "marshal unsupported for type %T (%v)", v, v)
	}
	b, err := proto.Marshal(m)
	if err != nil {
		fmt.Fprintf(p.ew, "%v\n", err)
		return nil
	}
	_, _ = p.w.Write(b)
	return nil
}

// Watch sends the client's watch response as the wire WatchResponse.
func (p *protobufPrinter) Watch(r *clientv3.WatchResponse) error {
	wr := &pb.WatchResponse{}
	if r != nil {
		wr = &pb.WatchResponse{
			Header:          r.Header,
			Events:          r.Events,
			CompactRevision: r.CompactRevision,
			Canceled:        r.Canceled,
			Created:         r.Created,
		}
	}
	return p.print(wr)
}
