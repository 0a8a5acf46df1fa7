package audit

import (
	"fmt"
)

// EscapeKey renders a key (arbitrary bytes) as printable ASCII for the
// "key" and "range_end" fields.
//
// The scheme is deliberately the smallest one that is unambiguous in any
// language: printable ASCII (0x20 to 0x7e) stands for itself, except the
// backslash, which is written `\\`; every other byte is `\xNN` with two
// lower-case hex digits. A key is bytes, so the log does not guess an
// encoding: UTF-8 text outside ASCII is written byte by byte. The output
// is always ASCII, hence always valid UTF-8 inside a JSON string, and
// UnescapeKey reverses it exactly. Python's codecs.escape_decode and
// bash's printf '%b' decode the same subset.
func EscapeKey(k []byte) string {
	return string(appendEscaped(nil, k))
}

const hexDigits = "0123456789abcdef"

func appendEscaped(dst, k []byte) []byte {
	for _, c := range k {
		switch {
		case c == '\\':
			dst = append(dst, '\\', '\\')
		case c >= 0x20 && c <= 0x7e:
			dst = append(dst, c)
		default:
			dst = append(dst, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
		}
	}
	return dst
}

// UnescapeKey reverses EscapeKey. It accepts exactly what EscapeKey
// writes (upper-case hex digits too) and fails on anything else: a lone
// backslash, an unknown escape, a short \x, or a byte outside printable
// ASCII.
func UnescapeKey(s string) ([]byte, error) {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			return nil, fmt.Errorf("audit: unescape key: byte 0x%02x at %d is not printable ASCII", c, i)
		}
		if c != '\\' {
			out = append(out, c)
			continue
		}
		if i+1 >= len(s) {
			return nil, fmt.Errorf("audit: unescape key: lone backslash at %d", i)
		}
		switch s[i+1] {
		case '\\':
			out = append(out, '\\')
			i++
		case 'x':
			if i+3 >= len(s) {
				return nil, fmt.Errorf("audit: unescape key: short \\x escape at %d", i)
			}
			hi, ok1 := unhex(s[i+2])
			lo, ok2 := unhex(s[i+3])
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("audit: unescape key: bad hex %q at %d", s[i:i+4], i)
			}
			out = append(out, hi<<4|lo)
			i += 3
		default:
			return nil, fmt.Errorf("audit: unescape key: unknown escape %q at %d", s[i:i+2], i)
		}
	}
	return out, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
