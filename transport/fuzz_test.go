package transport

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// frameSeeds are the inputs both fuzzers start from: good frames, a
// keepalive, and the broken shapes a peer or a scanner can send.
func frameSeeds(t testing.TB) [][]byte {
	var good []byte
	for _, m := range []*raftpb.Message{
		msg(raftpb.MsgHeartbeat, 1, 2, 0),
		appMsg(1, 2, 10, []byte("hello")),
		{Type: raftpb.MsgVote.Enum(), Reject: proto.Bool(true), Context: []byte{0}},
	} {
		var err error
		if good, err = appendFrame(good, m, DefaultMaxFrameSize); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := appendFrame(nil, snapMsg(1, 2, 42), DefaultMaxFrameSize)
	if err != nil {
		t.Fatal(err)
	}
	return [][]byte{
		nil,
		{0},
		good,
		good[:len(good)/2],
		append(append([]byte(nil), snap...), "store snapshot bytes"...),
		snap,
		snap[:len(snap)-1],
		binary.AppendUvarint(nil, DefaultMaxFrameSize),
		binary.AppendUvarint(nil, DefaultMaxFrameSize+1),
		binary.AppendUvarint(nil, 1<<62),
		bytes.Repeat([]byte{0xff}, binary.MaxVarintLen64),
		append(binary.AppendUvarint(nil, 3), 0xff, 0xff, 0xff),
		[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		[]byte("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), // a TLS ClientHello's start
	}
}

// FuzzFrameDecode feeds arbitrary bytes to the stream's frame reader. It
// must never panic, must end every input with io.EOF (between frames),
// io.ErrUnexpectedEOF (inside one) or errBadFrame, and every message it
// returns must survive a round trip through the encoder.
func FuzzFrameDecode(f *testing.F) {
	for _, s := range frameSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, limit := range []int{DefaultMaxFrameSize, 64} {
			fr := newFrameReader(bufio.NewReader(bytes.NewReader(data)), limit)
			for frames := 0; ; frames++ {
				if frames > len(data) {
					t.Fatalf("limit %d: %d frames from %d bytes", limit, frames, len(data))
				}
				m, err := fr.next()
				if err != nil {
					if err != io.EOF && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, errBadFrame) {
						t.Fatalf("limit %d: unexpected error kind: %v", limit, err)
					}
					break
				}
				if m == nil {
					continue // keepalive
				}
				enc, err := appendFrame(nil, m, DefaultMaxFrameSize)
				if err != nil {
					t.Fatalf("re-encode %v: %v", m, err)
				}
				back, err := newFrameReader(bufio.NewReader(bytes.NewReader(enc)), DefaultMaxFrameSize).next()
				if err != nil || !proto.Equal(back, m) {
					t.Fatalf("round trip of %v: got %v, %v", m, back, err)
				}
			}
		}
	})
}

// FuzzSnapshotReceive posts arbitrary bodies to the snapshot endpoint of
// a transport with a fake raft and store. It must never panic; it
// answers 204 only when the body is a MsgSnap frame from the sender to
// this member followed by the store snapshot, and then raft has stepped
// that MsgSnap after the store saved it; any other body is refused with
// a 4xx and raft hears nothing.
func FuzzSnapshotReceive(f *testing.F) {
	for _, s := range frameSeeds(f) {
		f.Add(s)
	}
	cfg := testConfig(f, 2, 7)
	cfg.Logger = slog.New(slog.DiscardHandler)
	fr, fs := newFakeRaft(), newFakeStore(0)
	fr.store = fs
	cfg.Raft, cfg.Snapshots = fr, fs
	tr := New(cfg)
	tr.AddPeer(1, []string{deadURL(f)})
	f.Cleanup(tr.Stop)
	h := tr.Handler()
	hdr := map[string]string{HeaderFrom: "1", HeaderTo: "2", HeaderClusterID: "7"}

	f.Fuzz(func(t *testing.T, data []byte) {
		before := len(fr.received(1, msgSnap))
		code, body := post(t, h, SnapshotPath, hdr, bytes.NewReader(data))
		got := fr.received(1, msgSnap)
		switch code {
		case http.StatusNoContent:
			if len(got) != before+1 {
				t.Fatalf("204 but raft stepped %d MsgSnaps", len(got)-before)
			}
			m := got[len(got)-1]
			if m.GetFrom() != 1 || m.GetTo() != 2 {
				t.Fatalf("204 for a MsgSnap from %x to %x", m.GetFrom(), m.GetTo())
			}
			if !fs.has(m.GetSnapshot().GetMetadata().GetIndex()) {
				t.Fatal("204 before the store saved the snapshot")
			}
		case http.StatusBadRequest:
			if len(got) != before {
				t.Fatalf("refused (%s) but raft stepped the MsgSnap", body)
			}
		default:
			t.Fatalf("status %d (%s) for a garbage body", code, body)
		}
		if v := fr.violationList(); len(v) > 0 {
			t.Fatal(v)
		}
	})
}

// A length prefix alone must not make the reader allocate what it claims:
// a peer can send 10 bytes announcing a 64 MiB frame and hang up (or,
// worse, keep many such connections open).
func TestHugeLengthPrefixAllocatesLittle(t *testing.T) {
	for _, claim := range []uint64{DefaultMaxFrameSize, DefaultMaxFrameSize / 2, 8 << 20} {
		input := append(binary.AppendUvarint(nil, claim), make([]byte, 1000)...)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := newFrameReader(bufio.NewReader(bytes.NewReader(input)), DefaultMaxFrameSize).next()
		runtime.ReadMemStats(&after)
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("claim %d: %v, want io.ErrUnexpectedEOF", claim, err)
		}
		if got := after.TotalAlloc - before.TotalAlloc; got > 4*reuseLimit { // the reused buffer, bufio, and room for noise
			t.Errorf("a %d-byte length prefix with 1000 bytes behind it allocated %d bytes", claim, got)
		}
	}
	// A frame that does arrive in full is still read, whatever its size.
	m := appMsg(1, 2, 7, bytes.Repeat([]byte("x"), 5<<20+3))
	enc, err := appendFrame(nil, m, DefaultMaxFrameSize)
	if err != nil {
		t.Fatal(err)
	}
	got, err := newFrameReader(bufio.NewReader(bytes.NewReader(enc)), DefaultMaxFrameSize).next()
	if err != nil || !proto.Equal(got, m) {
		t.Fatalf("5 MiB frame: %v", err)
	}
}

func (r *fakeRaft) violationList() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.violations...)
}
