package compat

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// normalizer rewrites what etcdctl printed against one server so that it
// can be compared line for line with what it printed against another. It
// removes only what legitimately differs between two correct servers
// started the same way; everything else (revisions, raft terms, values,
// counts, error texts, exit codes) must match exactly. README.md lists the
// rules.
type normalizer struct {
	clientURL, peerURL string
	memberID           uint64
	clusterID          uint64
	// leases holds the lease IDs seen so far, in order of first appearance:
	// the n-th becomes <lease-n>.
	leases []uint64
}

var (
	// Where lease IDs appear: "lease 0568a1fe23757e10 granted ...", a
	// lease list line, and JSON "ID"/"id"/"lease" fields of lease replies
	// and key-values.
	leaseHexRe  = regexp.MustCompile(`\blease ([0-9a-f]{1,16})\b`)
	leaseLineRe = regexp.MustCompile(`^([0-9a-f]{16})$`)
	leaseJSONRe = regexp.MustCompile(`"(?:ID|id|lease)":(\d+)`)

	// etcd's client logs a JSON warning line per failed RPC; its time,
	// connection pointer and local port vary.
	logTSRe     = regexp.MustCompile(`"ts":"[^"]*"`)
	logTargetRe = regexp.MustCompile(`"target":"[^"]*"`)
	logPeerRe   = regexp.MustCompile(`"peer":"[^"]*"`)

	// Server build facts and storage layout in endpoint status, as JSON
	// (string "version" only: a key-value's "version" is a number) and
	// as -w fields.
	statusJSONRe  = regexp.MustCompile(`"(version|storageVersion)":"[^"]*"|"(dbSize|dbSizeInUse|raftIndex|raftAppliedIndex)":\d+`)
	statusFieldRe = regexp.MustCompile(`^"(Version|StorageVersion)" : "[^"]*"$|^"(DBSize|DBSizeInUse|RaftIndex|RaftAppliedIndex)" : \d+$`)

	// A lease's attached keys, whose order etcd leaves to map iteration.
	attachedKeysRe = regexp.MustCompile(`attached keys\(\[([^\]]*)\]\)`)
	keysJSONRe     = regexp.MustCompile(`"keys":\[([^\]]*)\]`)

	// Timings: endpoint health's "took", a lease's remaining TTL.
	tookRe      = regexp.MustCompile(`took = \S+`)
	tookJSONRe  = regexp.MustCompile(`"took":"[^"]*"`)
	remainingRe = regexp.MustCompile(`remaining\(-?\d+s\)`)
	ttlJSONRe   = regexp.MustCompile(`"ttl":-?\d+`)
)

// tableVaryingColumns are the -w table columns whose values are
// normalised, by header.
var tableVaryingColumns = map[string]bool{
	"VERSION": true, "STORAGE VERSION": true, "DB SIZE": true, "IN USE": true,
	"PERCENTAGE NOT IN USE": true, "RAFT INDEX": true, "RAFT APPLIED INDEX": true,
	"TOOK": true,
}

// learnLeases records the lease IDs in out that are new.
func (n *normalizer) learnLeases(out string) {
	add := func(id uint64) {
		if id != 0 && id != n.memberID && id != n.clusterID && !slices.Contains(n.leases, id) {
			n.leases = append(n.leases, id)
		}
	}
	for _, m := range leaseHexRe.FindAllStringSubmatch(out, -1) {
		if id, err := strconv.ParseUint(m[1], 16, 64); err == nil {
			add(id)
		}
	}
	for line := range strings.SplitSeq(out, "\n") {
		if m := leaseLineRe.FindStringSubmatch(line); m != nil {
			if id, err := strconv.ParseUint(m[1], 16, 64); err == nil {
				add(id)
			}
		}
	}
	for _, m := range leaseJSONRe.FindAllStringSubmatch(out, -1) {
		if id, err := strconv.ParseUint(m[1], 10, 64); err == nil {
			add(id)
		}
	}
}

// idForms are the ways etcdctl prints an ID: decimal in JSON and -w fields,
// %016x for leases, %x for members.
func idForms(id uint64) []string {
	return []string{strconv.FormatUint(id, 10), fmt.Sprintf("%016x", id), strconv.FormatUint(id, 16)}
}

// replaceID replaces every whole-word occurrence of id, in any of its forms.
func replaceID(s string, id uint64, with string) string {
	for _, f := range idForms(id) {
		s = regexp.MustCompile(`\b`+f+`\b`).ReplaceAllString(s, with)
	}
	return s
}

// normalize rewrites one stream (stdout or stderr) of one command.
func (n *normalizer) normalize(out string) string {
	n.learnLeases(out)

	out = strings.ReplaceAll(out, n.clientURL, "<client-url>")
	_, clientAddr, _ := strings.Cut(n.clientURL, "://")
	out = strings.ReplaceAll(out, clientAddr, "<client-addr>")
	out = strings.ReplaceAll(out, n.peerURL, "<peer-url>")
	out = replaceID(out, n.memberID, "<member-id>")
	out = replaceID(out, n.clusterID, "<cluster-id>")
	for i, id := range n.leases {
		out = replaceID(out, id, fmt.Sprintf("<lease-%d>", i+1))
	}

	out = logTSRe.ReplaceAllString(out, `"ts":"<ts>"`)
	out = logTargetRe.ReplaceAllString(out, `"target":"<target>"`)
	out = logPeerRe.ReplaceAllString(out, `"peer":"<peer>"`)
	out = statusJSONRe.ReplaceAllStringFunc(out, func(m string) string {
		k, _, _ := strings.Cut(m, ":")
		return k + ":<" + strings.Trim(k, `"`) + ">"
	})
	out = tookRe.ReplaceAllString(out, "took = <duration>")
	out = tookJSONRe.ReplaceAllString(out, `"took":"<duration>"`)
	out = remainingRe.ReplaceAllString(out, "remaining(<ttl>)")
	out = sortList(attachedKeysRe, out, " ")
	out = sortList(keysJSONRe, out, ",")
	out = ttlJSONRe.ReplaceAllString(out, `"ttl":<ttl>`)

	lines := strings.Split(out, "\n")
	var header []string
	for i, line := range lines {
		if m := statusFieldRe.FindStringSubmatch(line); m != nil {
			k := m[1] + m[2]
			lines[i] = `"` + k + `" : <` + k + `>`
			continue
		}
		switch {
		case isTableBorder(line):
			lines[i] = "<table-border>"
		case strings.HasPrefix(line, "│") || strings.HasPrefix(line, "|"):
			cells := tableCells(line)
			if header == nil {
				header = cells
			} else {
				for j := range cells {
					if j < len(header) && tableVaryingColumns[header[j]] && cells[j] != "" {
						cells[j] = "<" + strings.ToLower(strings.ReplaceAll(header[j], " ", "-")) + ">"
					}
				}
			}
			// Cells are re-joined without padding: column widths follow
			// the widest value, which may be one that varies.
			lines[i] = "| " + strings.Join(cells, " | ") + " |"
		default:
			header = nil
		}
	}
	return strings.Join(lines, "\n")
}

// sortList sorts the sep-separated list that re's first group matches.
func sortList(re *regexp.Regexp, s, sep string) string {
	return re.ReplaceAllStringFunc(s, func(m string) string {
		loc := re.FindStringSubmatchIndex(m)
		items := strings.Split(m[loc[2]:loc[3]], sep)
		slices.Sort(items)
		return m[:loc[2]] + strings.Join(items, sep) + m[loc[3]:]
	})
}

// isTableBorder reports whether line is a horizontal rule of a table drawn
// by etcdctl's tablewriter (box-drawing or ASCII).
func isTableBorder(line string) bool {
	for _, p := range []string{"┌", "├", "└", "+-"} {
		if strings.HasPrefix(line, p) {
			return true
		}
	}
	return false
}

// tableCells splits a table row into its trimmed cells.
func tableCells(line string) []string {
	line = strings.ReplaceAll(line, "│", "|")
	line = strings.TrimSpace(line)
	line = strings.TrimPrefix(line, "|")
	line = strings.TrimSuffix(line, "|")
	cells := strings.Split(line, "|")
	for i := range cells {
		cells[i] = strings.TrimSpace(cells[i])
	}
	return cells
}
