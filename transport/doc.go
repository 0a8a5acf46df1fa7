// Package transport carries Raft messages between the members of a
// cluster over HTTP.
//
// It owns the peer protocol: one long-lived stream per peer for ordinary
// messages, a separate request per snapshot, reconnection, and the
// checks that a request comes from a peer of this member in this
// cluster. It never interprets messages (raft does), never decides who
// the peers are (the membership code calls AddPeer and RemovePeer as
// configuration changes are applied), and never touches the store except
// through SnapshotStore.
//
// # Wiring it up
//
// A member creates one Transport, mounts its handler on the peer
// listener, and tells it about every other member:
//
//	tr := transport.New(transport.Config{
//		ID:        memberID,
//		ClusterID: clusterID,
//		Raft:      node,      // Process = raft.Node.Step; the two reports likewise
//		Snapshots: snapshots, // streams the store's contents
//		Logger:    lg,
//	})
//	peerServer := &http.Server{Handler: tr.Handler()} // "/": it owns /raft/
//	go peerServer.Serve(peerListener)
//	for _, m := range members {
//		tr.AddPeer(m.ID, m.PeerURLs) // this member itself is ignored
//	}
//
// The Ready loop hands it the messages of each Ready, after the entries
// and hard state they depend on are durable:
//
//	tr.Send(rd.Messages) // never blocks
//
// On shutdown, Stop the transport before stopping the raft node and
// before shutting the peer server down (http.Server.Shutdown waits for
// handlers, and the streams this transport serves end only when it
// stops).
//
// The peer server needs no special settings: the handler lifts the
// server's ReadTimeout and WriteTimeout for its own requests, which last
// as long as the member. It does so, and interrupts them on Stop,
// through http.ResponseController, so middleware wrapping the handler
// must pass the ResponseWriter through or implement Unwrap.
//
// # Streams
//
// Each member keeps one outbound stream to each peer: a POST to
// /raft/stream whose body never ends. The request says who it is from,
// whom it is for and in which cluster (X-Cairn-From, X-Cairn-To,
// X-Cairn-Cluster-ID, each a member or cluster ID in lower-case hex).
// The receiver checks them, answers 200 at once, before reading any of
// the body, and then reads frames (see frame.go: a uvarint length and a
// protobuf-encoded raftpb.Message, at most MaxFrameSize bytes) and steps
// each into raft, in order. Messages therefore reach a peer in the order
// Send was given them; raft copes with the loss and duplication that
// reconnection brings.
//
// A stream carries one direction only: A's messages to B travel on A's
// stream to B, B's replies on B's stream to A. So each member of an
// n-member cluster has n-1 outbound streams and serves n-1 inbound ones.
//
// Only messages from a known peer, addressed to this member, are
// accepted: a stream from an unknown or removed member is refused (403),
// one for another cluster is refused with 409 Conflict and a message
// naming both cluster IDs, and RemovePeer closes streams from the
// removed member.
//
// # Flow control
//
// Send never blocks the Ready loop. Each peer has a bounded queue
// (QueueSize, 4096 by default); a goroutine per peer takes whatever is
// queued, writes it as one batch and flushes once. When the peer or the
// network is slower than raft, TCP pushes back, the writer blocks, the
// queue fills, and Send drops messages for that peer and reports it
// unreachable. That is the whole of flow control, and it is enough:
// raft treats the network as lossy, and an unreachable report makes the
// leader probe the follower with one append per heartbeat instead of
// streaming to it, until it answers again. Reports to raft are made
// from a goroutine of the transport's, never from Send's caller, and
// coalesce per peer.
//
// # Failures
//
// A stream that cannot be opened, is refused, or breaks is reported
// with ReportUnreachable and reopened after a back-off that doubles from
// MinBackoff to MaxBackoff (50 ms to 2 s by default) with jitter,
// trying each of the peer's URLs in turn. Queued messages wait in the
// queue meanwhile. ActiveSince is the time the current stream was
// accepted, zero while there is none.
//
// A stream is considered broken when the request fails, when the
// receiver ends its response, and when a write makes no progress for
// WriteTimeout: without that last rule a peer whose machine vanished
// would look connected for as long as TCP keeps retransmitting
// (minutes).
//
// # Snapshots
//
// A MsgSnap does not carry the store's contents, which may be
// gigabytes, so it never goes on the stream (where it would hold up
// heartbeats). It is sent by a POST to /raft/snapshot on a connection of
// its own: the body is the MsgSnap's frame followed by whatever
// SnapshotStore.Write produces, up to the end of the body. The receiver
// hands the rest of the body to SnapshotStore.Receive; only when that
// has durably saved it, and the body ended right there, does it step
// the MsgSnap into raft and answer 204. A transfer that fails midway
// ends the body with an error, not a clean end (chunked encoding tells
// the two apart), so the receiver never takes a torn snapshot for a
// whole one. The sender reports the outcome with ReportSnapshot
// (SnapshotFinish on 204, SnapshotFailure otherwise); raft sends a new
// MsgSnap later if it failed.
//
// # Through proxies
//
// Tests put an HTTP reverse proxy (net/http/httputil.ReverseProxy) in
// front of each member's peer port and partition the cluster by
// X-Cairn-From. Three things make that work:
//
//   - Every request carries the identity headers, and every stream and
//     snapshot has a connection of its own, so a proxy can tell them
//     apart and cut one pair of members without touching the others.
//
//   - Requests carry "Connection: close". This matters more than it
//     looks. A Go HTTP/1 server that starts a response while the request
//     body is still unread first reads and discards up to 256 KiB of the
//     body (so that the connection can be reused), unless the handler
//     enabled full duplex. The receiver here does
//     (http.ResponseController.EnableFullDuplex), but ReverseProxy does
//     not: behind a stock proxy the proxy's server would swallow frames
//     (and hold back the 200) as soon as the member answered. A request
//     that asks for its connection to be closed is exempt from the
//     discard, because the connection will not be reused; so the stream
//     passes through an unmodified ReverseProxy intact.
//
//   - The receiver's 200 has no Content-Length, which makes ReverseProxy
//     flush each write at once, so the sender learns promptly that its
//     stream is up.
//
// When such a proxy cuts a stream (by cancelling the proxied request),
// the sender sees its response end or fail, and reconnects.
//
// # Shutdown
//
// Every goroutine the transport starts is owned by the Transport (the
// reporter) or by a peer (its stream writer, the watcher of the
// stream's response, snapshot senders) and is ended and waited for by
// Stop, or by RemovePeer for that peer. Handlers of inbound requests run
// on the HTTP server's goroutines; Stop cancels them (moving their
// connection's read deadline into the past, since a handler blocked
// reading a body watches no context) and waits for them too. After Stop
// returns the transport calls Raft and SnapshotStore no more.
package transport
