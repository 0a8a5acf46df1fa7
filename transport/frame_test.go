package transport

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

func TestFramesRoundTrip(t *testing.T) {
	msgs := []*raftpb.Message{
		msg(raftpb.MsgHeartbeat, 1, 2, 0),
		appMsg(1, 2, 10, []byte("hello")),
		appMsg(1, 2, 11, make([]byte, 2<<20)), // larger than the reused buffer
		snapMsg(1, 2, 99),
		{Type: raftpb.MsgVote.Enum(), Reject: proto.Bool(true), Context: []byte{0}},
	}
	var buf []byte
	for i, m := range msgs {
		var err error
		if buf, err = appendFrame(buf, m, DefaultMaxFrameSize); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			buf = append(buf, 0) // a keepalive between frames
		}
	}
	fr := newFrameReader(bufio.NewReader(bytes.NewReader(buf)), DefaultMaxFrameSize)
	for i, want := range msgs {
		got, err := fr.next()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if got == nil { // the keepalive
			if got, err = fr.next(); err != nil {
				t.Fatalf("frame %d: %v", i, err)
			}
		}
		if !proto.Equal(got, want) {
			t.Fatalf("frame %d: got %v, want %v", i, got, want)
		}
	}
	if _, err := fr.next(); err != io.EOF {
		t.Fatalf("after the last frame: %v, want io.EOF", err)
	}
}

// The reader's buffer is reused: a decoded message must not share it.
func TestFrameReaderDoesNotAlias(t *testing.T) {
	var buf []byte
	buf, _ = appendFrame(buf, appMsg(1, 2, 1, []byte("first")), 1<<20)
	buf, _ = appendFrame(buf, appMsg(1, 2, 2, []byte("other")), 1<<20)
	fr := newFrameReader(bufio.NewReader(bytes.NewReader(buf)), 1<<20)
	first, _ := fr.next()
	if _, err := fr.next(); err != nil {
		t.Fatal(err)
	}
	if got := string(first.GetEntries()[0].GetData()); got != "first" {
		t.Fatalf("first message's data changed to %q after reading the next", got)
	}
}

func TestBadFrames(t *testing.T) {
	good, _ := appendFrame(nil, appMsg(1, 2, 1, []byte("payload")), 1<<20)
	overflow := bytes.Repeat([]byte{0xff}, binary.MaxVarintLen64)
	for _, tc := range []struct {
		name  string
		input []byte
		limit int
		want  error  // errors.Is
		text  string // in the message
	}{
		{"too large", good, 4, errFrameTooLarge, "limit 4"},
		{"cut inside the payload", good[:len(good)-1], 1 << 20, io.ErrUnexpectedEOF, ""},
		{"cut inside the length", binary.AppendUvarint(nil, 1<<20)[:1], 1 << 20, io.ErrUnexpectedEOF, ""},
		{"length overflows", overflow, 1 << 20, errBadFrame, "overflows"},
		{"not a message", append(binary.AppendUvarint(nil, 3), 0xff, 0xff, 0xff), 1 << 20, errBadFrame, "decode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fr := newFrameReader(bufio.NewReader(bytes.NewReader(tc.input)), tc.limit)
			_, err := fr.next()
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("got %v, want %v mentioning %q", err, tc.want, tc.text)
			}
		})
	}
}

func TestAppendFrameRefusesOversizedMessage(t *testing.T) {
	dst := []byte("keep")
	out, err := appendFrame(dst, appMsg(1, 2, 1, make([]byte, 100)), 50)
	if !errors.Is(err, errFrameTooLarge) {
		t.Fatalf("got %v, want errFrameTooLarge", err)
	}
	if string(out) != "keep" {
		t.Fatalf("dst changed to %q on error", out)
	}
}

func TestBackoff(t *testing.T) {
	b := backoff{min: 50 * time.Millisecond, max: 2 * time.Second}
	for range 3 {
		for i, ceil := range []time.Duration{50, 100, 200, 400, 800, 1600, 2000, 2000} {
			ceil *= time.Millisecond
			d := b.next()
			if d < ceil/2 || d > ceil {
				t.Fatalf("attempt %d: pause %v outside [%v, %v]", i, d, ceil/2, ceil)
			}
		}
		b.reset()
	}
}

// stallWriter gives up on a writer that blocks, and cuts big writes so
// that a slow but moving peer is not mistaken for a stalled one.
func TestStallWriter(t *testing.T) {
	pr, pw := io.Pipe()
	stalled := make(chan struct{})
	sw := newStallWriter(pw, 50*time.Millisecond, func() {
		close(stalled)
		pr.CloseWithError(errWriteStalled)
	})
	defer sw.stop()

	// A reader taking 64 KiB every 10 ms keeps a 1 MiB write alive.
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, stallChunk)
		for n := 0; n < 1<<20; {
			k, err := io.ReadFull(pr, buf)
			if err != nil {
				return
			}
			n += k
			time.Sleep(10 * time.Millisecond)
		}
	}()
	if _, err := sw.Write(make([]byte, 1<<20)); err != nil {
		t.Fatalf("slow but steady reader: %v", err)
	}
	<-done
	select {
	case <-stalled:
		t.Fatal("stall reported for a steady reader")
	default:
	}

	// Nobody reads: the write fails once the timeout passes.
	if _, err := sw.Write([]byte("x")); !errors.Is(err, errWriteStalled) {
		t.Fatalf("got %v, want errWriteStalled", err)
	}
	<-stalled
}
