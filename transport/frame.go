package transport

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// A frame is one raftpb.Message on the wire: its protobuf encoding
// preceded by the encoding's length as an unsigned varint
// (encoding/binary's Uvarint, at most 10 bytes):
//
//	frame = uvarint(len(payload)) payload
//
// A stream body is a sequence of frames and nothing else; a snapshot body
// is one frame followed by the state-machine snapshot. A zero-length
// frame carries no message and is skipped by the reader; it is reserved
// for keepalives (raft never sends a message that encodes to nothing,
// since every message sets its type explicitly).
//
// The length is bounded by the reader's limit (Config.MaxFrameSize) so a
// corrupt or hostile length cannot make the receiver allocate gigabytes.

var (
	// errFrameTooLarge is wrapped by errors about the size limit.
	errFrameTooLarge = errors.New("frame too large")
	// errBadFrame is wrapped by errors about what a received frame
	// holds, as opposed to the stream breaking.
	errBadFrame = errors.New("bad frame")
)

// appendFrame appends m as a frame to dst. It fails, leaving dst as it
// was, if m encodes to more than limit bytes.
func appendFrame(dst []byte, m *raftpb.Message, limit int) ([]byte, error) {
	size := proto.Size(m)
	if size > limit {
		return dst, fmt.Errorf("%w: %s to %x is %d bytes, limit %d", errFrameTooLarge, m.GetType(), m.GetTo(), size, limit)
	}
	head := binary.AppendUvarint(dst, uint64(size))
	// UseCachedSize reuses the sizes proto.Size just computed instead of
	// walking the entries a second time.
	out, err := proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(head, m)
	if err != nil {
		return dst, fmt.Errorf("encode %s to %x: %w", m.GetType(), m.GetTo(), err)
	}
	if len(out)-len(head) != size {
		// Someone changed m between Size and Marshal: the frame would lie
		// about its length.
		return dst, fmt.Errorf("encode %s to %x: message changed while being encoded", m.GetType(), m.GetTo())
	}
	return out, nil
}

// frameReader reads frames from a stream, reusing one buffer for
// ordinary-sized payloads.
type frameReader struct {
	r     *bufio.Reader
	limit int
	buf   []byte
}

// reuseLimit is the largest payload buffer a frameReader keeps between
// frames; a bigger frame gets a buffer of its own that is dropped after.
const reuseLimit = 1 << 20

func newFrameReader(r *bufio.Reader, limit int) *frameReader {
	return &frameReader{r: r, limit: limit}
}

// next reads the next frame and decodes it. It returns (nil, nil) for a
// zero-length frame, io.EOF at a clean end of stream (between frames),
// and an error wrapping io.ErrUnexpectedEOF if the stream ends inside a
// frame.
func (fr *frameReader) next() (*raftpb.Message, error) {
	n, err := readUvarint(fr.r)
	if err != nil {
		if err == io.EOF {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("read frame length: %w", err)
	}
	if n == 0 {
		return nil, nil
	}
	if n > uint64(fr.limit) {
		return nil, fmt.Errorf("%w: %w: %d bytes, limit %d", errBadFrame, errFrameTooLarge, n, fr.limit)
	}
	var payload []byte
	if n <= reuseLimit {
		if uint64(cap(fr.buf)) < n {
			fr.buf = make([]byte, n, max(n, 4096))
		}
		payload = fr.buf[:n]
		_, err = io.ReadFull(fr.r, payload)
	} else {
		payload, err = readLarge(fr.r, int(n))
	}
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("read %d-byte frame: %w", n, err)
	}
	// proto.Unmarshal copies bytes fields out of payload, so the buffer
	// can be reused for the next frame while m lives on in raft.
	m := new(raftpb.Message)
	if err := proto.Unmarshal(payload, m); err != nil {
		return nil, fmt.Errorf("%w: decode %d-byte message: %w", errBadFrame, n, err)
	}
	return m, nil
}

// readLarge reads an n-byte payload bigger than reuseLimit, growing its
// buffer as the bytes arrive (doubling from reuseLimit) instead of
// allocating n bytes up front: a length prefix alone, from a peer that
// then sends nothing or hangs up, costs at most reuseLimit bytes however
// large it claims the frame is, so a few connections with near-limit
// prefixes cannot pin gigabytes. etcd's decoder allocates the claimed
// length at once (bounded by its 512 MiB limit); what is received, and
// the limit, are the same here.
func readLarge(r io.Reader, n int) ([]byte, error) {
	buf := make([]byte, 0, reuseLimit)
	for len(buf) < n {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(n-len(buf), cap(buf)))
		}
		k, err := io.ReadFull(r, buf[len(buf):min(cap(buf), n)])
		buf = buf[:len(buf)+k]
		if err != nil {
			return nil, err
		}
	}
	return buf, nil
}

// readUvarint is binary.ReadUvarint with its errors told apart: io.EOF
// only before the first byte, io.ErrUnexpectedEOF inside the number, and
// errBadFrame for a number that overflows 64 bits.
func readUvarint(r io.ByteReader) (uint64, error) {
	var x uint64
	for i := range binary.MaxVarintLen64 {
		b, err := r.ReadByte()
		if err != nil {
			if i > 0 && err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		if b < 0x80 {
			if i == binary.MaxVarintLen64-1 && b > 1 {
				break
			}
			return x | uint64(b)<<(7*i), nil
		}
		x |= uint64(b&0x7f) << (7 * i)
	}
	return 0, fmt.Errorf("%w: length overflows 64 bits", errBadFrame)
}
