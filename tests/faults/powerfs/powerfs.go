// Package powerfs is a FUSE file system for power-loss tests. It passes
// every write through to backing files, so the process using it sees an
// ordinary file system, and it remembers what a real disk would lose if
// the power went out: for each file, the bytes and the length it had at
// its last fsync or fdatasync; for each directory, the entries (create,
// rename, unlink, mkdir, rmdir) it had at its last fsync. Cut drops
// everything else at once, as a power cut would, and the next Mount
// shows what is left.
//
// The model is strict (the one LazyFS and ALICE use): a new file's
// directory entry survives only an fsync of its directory, never an
// fsync of the file alone; a file's data and length survive only an
// fsync or fdatasync of that file (both are treated alike: fdatasync
// must persist a changed length too); close, flush and sync_file_range
// make nothing durable. Unsynced changes are kept at 4 KiB granularity:
// the first write to a block since the file's last sync saves the block's
// synced bytes, and Cut writes them back and truncates the file to its
// synced length. An fsync is therefore O(1) and a cut costs only what
// was left unsynced.
//
// Faults: FailSync makes fsync of matching files return an error (EIO),
// and, as Linux does since the "fsyncgate" discussion, the failed pages
// count as written: a later fsync succeeds without making them durable,
// so a server that retries fsync and trusts it loses data at the next
// cut. FailWrite makes writes to matching files fail (ENOSPC). SlowSync
// delays syncs (a slow disk); FlipWrite flips a bit in the next write to
// a matching file (a bad disk), so checksums can be tested.
//
// Directories live in the daemon's memory and file data in backing files
// named by inode number; hard links, symlinks, special files and
// extended attributes are not supported. File locks (flock, fcntl) are
// left to the kernel, which handles them locally when the file system
// does not ask for them: enough for a single host.
package powerfs

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

const blockSize = 4096

// FS is one power-loss file system: its state outlives mounts, so a test
// can Unmount, Cut and Mount again on what is left.
type FS struct {
	backing string

	mu     sync.Mutex // guards everything below, backing-file I/O included
	root   *mnode
	nextID uint64
	files  map[uint64]*mnode // every file node that may hold data
	server *fuse.Server
	mount  string
	faults faults
	stats  Stats
}

type faults struct {
	sync  func(path string) syscall.Errno
	write func(path string) syscall.Errno
	// slow delays every fsync of a matching file or directory.
	slow      func(path string) bool
	slowDelay time.Duration
	// flip corrupts one byte of the next write to a matching file.
	flip func(path string) bool
}

// Stats counts what the file system saw and what cuts dropped.
type Stats struct {
	Writes, Syncs, DirSyncs, FailedSyncs, FailedWrites int64
	// SlowSyncs counts the syncs SlowSync delayed; FlippedBytes the
	// bytes FlipWrite corrupted.
	SlowSyncs, FlippedBytes int64
	Cuts                    int
	// What cuts dropped: files whose data or length went back to their
	// last sync, bytes of blocks restored, directory entries reverted.
	FilesReverted, BlocksRestored, EntriesReverted int64
}

// mnode is a file or directory of the model; it outlives mounts.
type mnode struct {
	id   uint64
	dir  bool
	mode uint32 // permission bits
	name string // last name given to it, for fault matching and messages
	mtim time.Time

	// Directory.
	entries map[string]*mnode // live
	durable map[string]*mnode // as of the last fsync of the directory

	// File.
	f          *os.File // backing file, open read-write
	size       int64    // live length
	syncedSize int64    // length as of the last successful sync
	undo       map[int64][]byte
	lost       map[int64][]byte // blocks whose sync failed: the disk keeps the old bytes
	redirtied  map[int64]bool   // lost blocks written again since

	fuse *fnode // the node of the current mount, nil between mounts
}

// New makes an empty file system whose file data lives in backing (a
// directory it creates; nothing else may use it).
func New(backing string) (*FS, error) {
	if err := os.MkdirAll(backing, 0o700); err != nil {
		return nil, err
	}
	if des, err := os.ReadDir(backing); err != nil {
		return nil, err
	} else if len(des) > 0 {
		return nil, fmt.Errorf("powerfs: backing directory %s is not empty", backing)
	}
	p := &FS{backing: backing, files: map[uint64]*mnode{}, nextID: 2}
	p.root = &mnode{id: 1, dir: true, mode: 0o755, name: "/", entries: map[string]*mnode{}, durable: map[string]*mnode{}, mtim: time.Now()}
	return p, nil
}

// Mount mounts the file system at dir (which must exist). It fails when
// FUSE is not available (no /dev/fuse, no permission to mount).
func (p *FS) Mount(dir string) error {
	p.mu.Lock()
	if p.server != nil {
		p.mu.Unlock()
		return fmt.Errorf("powerfs: already mounted at %s", p.mount)
	}
	p.resetFuse(p.root)
	p.mu.Unlock()
	zero := time.Duration(0)
	root := p.newFnode(p.root)
	srv, err := fs.Mount(dir, root, &fs.Options{
		// No kernel caching of entries or attributes beyond a request:
		// the model is the only truth, and a cut changes it.
		EntryTimeout:    &zero,
		AttrTimeout:     &zero,
		NegativeTimeout: &zero,
		MountOptions: fuse.MountOptions{
			FsName:            "powerfs",
			Name:              "powerfs",
			DirectMountStrict: true,
			MaxWrite:          1 << 20,
		},
	})
	if err != nil {
		return fmt.Errorf("powerfs: mount %s: %w", dir, err)
	}
	p.mu.Lock()
	p.server, p.mount = srv, dir
	p.mu.Unlock()
	return nil
}

// Unmount unmounts the file system. Every process that had files open on
// it must have exited.
func (p *FS) Unmount() error {
	p.mu.Lock()
	srv := p.server
	p.mu.Unlock()
	if srv == nil {
		return nil
	}
	var err error
	for range 50 {
		if err = srv.Unmount(); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("powerfs: unmount %s: %w", p.mount, err)
	}
	srv.Wait()
	p.mu.Lock()
	p.server = nil
	p.mu.Unlock()
	return nil
}

// Close unmounts and removes the backing files.
func (p *FS) Close() error {
	err := p.Unmount()
	p.mu.Lock()
	for _, m := range p.files {
		m.f.Close()
	}
	p.files = map[uint64]*mnode{}
	p.mu.Unlock()
	if rerr := os.RemoveAll(p.backing); err == nil {
		err = rerr
	}
	return err
}

func (p *FS) resetFuse(m *mnode) {
	m.fuse = nil
	for _, c := range m.entries {
		p.resetFuse(c)
	}
}

// Cut simulates a power cut: every file goes back to the bytes and length
// of its last successful sync, every directory to its entries at its last
// fsync, and files no directory holds any more are deleted. The file
// system must be unmounted.
func (p *FS) Cut() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.server != nil {
		return fmt.Errorf("powerfs: Cut while mounted at %s", p.mount)
	}
	p.stats.Cuts++
	for _, m := range p.files {
		reverted := len(m.undo) > 0 || len(m.lost) > 0 || m.size != m.syncedSize
		for _, set := range []map[int64][]byte{m.undo, m.lost} {
			for blk, data := range set {
				if _, err := m.f.WriteAt(data, blk*blockSize); err != nil {
					return fmt.Errorf("powerfs: cut: restore %s: %w", m.name, err)
				}
				p.stats.BlocksRestored++
			}
		}
		if err := m.f.Truncate(m.syncedSize); err != nil {
			return fmt.Errorf("powerfs: cut: truncate %s: %w", m.name, err)
		}
		m.size = m.syncedSize
		m.undo, m.lost, m.redirtied = nil, nil, nil
		if reverted {
			p.stats.FilesReverted++
		}
	}
	reach := map[uint64]bool{}
	var walk func(d *mnode)
	walk = func(d *mnode) {
		reach[d.id] = true
		if !maps.Equal(d.entries, d.durable) {
			p.stats.EntriesReverted += int64(diffEntries(d.entries, d.durable))
		}
		d.entries = maps.Clone(d.durable)
		for _, c := range d.entries {
			if c.dir {
				walk(c)
			} else {
				reach[c.id] = true
			}
		}
	}
	walk(p.root)
	for id, m := range p.files {
		if !reach[id] {
			m.f.Close()
			os.Remove(p.backingPath(id))
			delete(p.files, id)
		}
	}
	return nil
}

func diffEntries(a, b map[string]*mnode) int {
	n := 0
	for k, v := range a {
		if b[k] != v {
			n++
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			n++
		}
	}
	return n
}

// Stats returns the counters so far.
func (p *FS) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// FailSync makes every fsync and fdatasync of a file whose name matches
// return errno (0 or a nil match turns it off). The failure drops the
// file's unsynced blocks from the disk for good, as Linux does.
func (p *FS) FailSync(match func(name string) bool, errno syscall.Errno) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults.sync = matcher(match, errno)
}

// FailWrite makes writes (and allocations that grow a file) to a file
// whose name matches return errno, ENOSPC say.
func (p *FS) FailWrite(match func(name string) bool, errno syscall.Errno) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults.write = matcher(match, errno)
}

// SlowSync delays every fsync and fdatasync of a file or directory whose
// name matches by delay before it is done, as a slow or overloaded disk
// would (0 or a nil match turns it off). Other operations are not held
// up, not even on the same file.
func (p *FS) SlowSync(match func(name string) bool, delay time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if match == nil || delay <= 0 {
		p.faults.slow, p.faults.slowDelay = nil, 0
		return
	}
	p.faults.slow, p.faults.slowDelay = match, delay
}

// FlipWrite corrupts the next write to a file whose name matches: one
// bit of the byte in the middle of the data written is flipped on its
// way to the disk (the writer is told all went well), as a bad disk,
// cable or controller would. It fires once; a nil match disarms it.
func (p *FS) FlipWrite(match func(name string) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults.flip = match
}

// All matches every name.
func All(string) bool { return true }

func matcher(match func(string) bool, errno syscall.Errno) func(string) syscall.Errno {
	if match == nil || errno == 0 {
		return nil
	}
	return func(name string) syscall.Errno {
		if match(name) {
			return errno
		}
		return 0
	}
}

// HasSuffix is a FailSync/FailWrite matcher.
func HasSuffix(suffix string) func(string) bool {
	return func(name string) bool { return strings.HasSuffix(name, suffix) }
}

func (p *FS) backingPath(id uint64) string {
	return filepath.Join(p.backing, fmt.Sprintf("%d", id))
}

// save records the synced bytes of the blocks of m overlapping [from, to)
// that have not been saved since m's last sync, before they change.
func (p *FS) save(m *mnode, from, to int64) error {
	if to > m.syncedSize {
		to = m.syncedSize
	}
	if from >= to {
		return nil
	}
	for blk := from / blockSize; blk*blockSize < to; blk++ {
		if _, ok := m.lost[blk]; ok {
			if m.redirtied == nil {
				m.redirtied = map[int64]bool{}
			}
			m.redirtied[blk] = true
			continue
		}
		if _, ok := m.undo[blk]; ok {
			continue
		}
		start := blk * blockSize
		n := min(int64(blockSize), m.syncedSize-start)
		buf := make([]byte, n)
		if start < m.size {
			if _, err := m.f.ReadAt(buf[:min(n, m.size-start)], start); err != nil {
				return err
			}
		}
		// Bytes between the live length and the synced length were cut
		// off since the sync; they were saved when that happened.
		if m.undo == nil {
			m.undo = map[int64][]byte{}
		}
		m.undo[blk] = buf
	}
	return nil
}

func (p *FS) newFile(parent *mnode, name string, mode uint32) (*mnode, error) {
	id := p.nextID
	p.nextID++
	f, err := os.OpenFile(p.backingPath(id), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	m := &mnode{id: id, mode: mode & 0o7777, name: name, f: f, mtim: time.Now()}
	p.files[id] = m
	parent.entries[name] = m
	return m, nil
}

// fnode is the FUSE face of an mnode for one mount.
type fnode struct {
	fs.Inode
	p *FS
	m *mnode
}

var (
	_ fs.NodeLookuper  = (*fnode)(nil)
	_ fs.NodeReaddirer = (*fnode)(nil)
	_ fs.NodeGetattrer = (*fnode)(nil)
	_ fs.NodeSetattrer = (*fnode)(nil)
	_ fs.NodeCreater   = (*fnode)(nil)
	_ fs.NodeMkdirer   = (*fnode)(nil)
	_ fs.NodeUnlinker  = (*fnode)(nil)
	_ fs.NodeRmdirer   = (*fnode)(nil)
	_ fs.NodeRenamer   = (*fnode)(nil)
	_ fs.NodeOpener    = (*fnode)(nil)
	_ fs.NodeReader    = (*fnode)(nil)
	_ fs.NodeWriter    = (*fnode)(nil)
	_ fs.NodeFsyncer   = (*fnode)(nil)
	_ fs.NodeAllocater = (*fnode)(nil)
	_ fs.NodeFlusher   = (*fnode)(nil)
	_ fs.NodeStatfser  = (*fnode)(nil)
)

func (p *FS) newFnode(m *mnode) *fnode {
	n := &fnode{p: p, m: m}
	m.fuse = n
	return n
}

func stable(m *mnode) fs.StableAttr {
	if m.dir {
		return fs.StableAttr{Mode: syscall.S_IFDIR, Ino: m.id}
	}
	return fs.StableAttr{Mode: syscall.S_IFREG, Ino: m.id}
}

// inode returns the Inode of child m under n, making it on first use in
// this mount. Called with p.mu held.
func (n *fnode) inode(ctx context.Context, m *mnode) *fs.Inode {
	if m.fuse != nil {
		return &m.fuse.Inode
	}
	return n.NewPersistentInode(ctx, n.p.newFnode(m), stable(m))
}

func (p *FS) fill(m *mnode, a *fuse.Attr) {
	a.Ino = m.id
	a.Mtime, a.Mtimensec = uint64(m.mtim.Unix()), uint32(m.mtim.Nanosecond())
	a.Ctime, a.Ctimensec = a.Mtime, a.Mtimensec
	a.Atime, a.Atimensec = a.Mtime, a.Mtimensec
	a.Blksize = blockSize
	if m.dir {
		a.Mode = syscall.S_IFDIR | m.mode
		a.Nlink = 2
		a.Size = blockSize
		return
	}
	a.Mode = syscall.S_IFREG | m.mode
	a.Nlink = 1
	a.Size = uint64(m.size)
	a.Blocks = uint64((m.size + 511) / 512)
}

func (n *fnode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	n.p.mu.Lock()
	defer n.p.mu.Unlock()
	c, ok := n.m.entries[name]
	if !ok {
		return nil, syscall.ENOENT
	}
	n.p.fill(c, &out.Attr)
	return n.inode(ctx, c), 0
}

func (n *fnode) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	n.p.mu.Lock()
	defer n.p.mu.Unlock()
	var des []fuse.DirEntry
	for name, c := range n.m.entries {
		des = append(des, fuse.DirEntry{Name: name, Ino: c.id, Mode: stable(c).Mode})
	}
	return fs.NewListDirStream(des), 0
}

func (n *fnode) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.p.mu.Lock()
	defer n.p.mu.Unlock()
	n.p.fill(n.m, &out.Attr)
	return 0
}

func (n *fnode) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	p, m := n.p, n.m
	p.mu.Lock()
	defer p.mu.Unlock()
	if mode, ok := in.GetMode(); ok {
		m.mode = mode & 0o7777
	}
	if size, ok := in.GetSize(); ok {
		if m.dir {
			return syscall.EISDIR
		}
		if errno := p.truncate(m, int64(size)); errno != 0 {
			return errno
		}
	}
	if mt, ok := in.GetMTime(); ok {
		m.mtim = mt
	}
	p.fill(m, &out.Attr)
	return 0
}

func (p *FS) truncate(m *mnode, size int64) syscall.Errno {
	if size > m.size && p.faults.write != nil {
		if errno := p.faults.write(m.name); errno != 0 {
			p.stats.FailedWrites++
			return errno
		}
	}
	if err := p.save(m, min(size, m.size), max(size, m.size)); err != nil {
		return fs.ToErrno(err)
	}
	if err := m.f.Truncate(size); err != nil {
		return fs.ToErrno(err)
	}
	m.size = size
	m.mtim = time.Now()
	return 0
}

func (n *fnode) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	p := n.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := n.m.entries[name]; ok {
		if flags&syscall.O_EXCL != 0 {
			return nil, nil, 0, syscall.EEXIST
		}
		if c.dir {
			return nil, nil, 0, syscall.EISDIR
		}
		if flags&syscall.O_TRUNC != 0 {
			if errno := p.truncate(c, 0); errno != 0 {
				return nil, nil, 0, errno
			}
		}
		p.fill(c, &out.Attr)
		return n.inode(ctx, c), nil, 0, 0
	}
	c, err := p.newFile(n.m, name, mode)
	if err != nil {
		return nil, nil, 0, fs.ToErrno(err)
	}
	n.m.mtim = time.Now()
	p.fill(c, &out.Attr)
	return n.inode(ctx, c), nil, 0, 0
}

func (n *fnode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	p := n.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := n.m.entries[name]; ok {
		return nil, syscall.EEXIST
	}
	id := p.nextID
	p.nextID++
	c := &mnode{id: id, dir: true, mode: mode & 0o7777, name: name, entries: map[string]*mnode{}, durable: map[string]*mnode{}, mtim: time.Now()}
	n.m.entries[name] = c
	n.m.mtim = time.Now()
	p.fill(c, &out.Attr)
	return n.inode(ctx, c), 0
}

func (n *fnode) Unlink(ctx context.Context, name string) syscall.Errno {
	p := n.p
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := n.m.entries[name]
	if !ok {
		return syscall.ENOENT
	}
	if c.dir {
		return syscall.EISDIR
	}
	delete(n.m.entries, name)
	n.m.mtim = time.Now()
	return 0
}

func (n *fnode) Rmdir(ctx context.Context, name string) syscall.Errno {
	p := n.p
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := n.m.entries[name]
	if !ok {
		return syscall.ENOENT
	}
	if !c.dir {
		return syscall.ENOTDIR
	}
	if len(c.entries) > 0 {
		return syscall.ENOTEMPTY
	}
	delete(n.m.entries, name)
	n.m.mtim = time.Now()
	return 0
}

func (n *fnode) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	p := n.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if flags&^uint32(unix.RENAME_NOREPLACE) != 0 {
		return syscall.EINVAL
	}
	np, ok := newParent.(*fnode)
	if !ok {
		return syscall.EXDEV
	}
	c, ok := n.m.entries[name]
	if !ok {
		return syscall.ENOENT
	}
	if old, ok := np.m.entries[newName]; ok {
		if old == c {
			return 0
		}
		if flags&unix.RENAME_NOREPLACE != 0 {
			return syscall.EEXIST
		}
		if old.dir != c.dir {
			if old.dir {
				return syscall.EISDIR
			}
			return syscall.ENOTDIR
		}
		if old.dir && len(old.entries) > 0 {
			return syscall.ENOTEMPTY
		}
	}
	delete(n.m.entries, name)
	np.m.entries[newName] = c
	c.name = newName
	n.m.mtim, np.m.mtim = time.Now(), time.Now()
	return 0
}

func (n *fnode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	p := n.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if n.m.dir {
		return nil, 0, 0
	}
	if flags&syscall.O_TRUNC != 0 && flags&syscall.O_ACCMODE != syscall.O_RDONLY {
		if errno := p.truncate(n.m, 0); errno != 0 {
			return nil, 0, errno
		}
	}
	return nil, 0, 0
}

func (n *fnode) Read(ctx context.Context, f fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	p, m := n.p, n.m
	p.mu.Lock()
	defer p.mu.Unlock()
	if off >= m.size {
		return fuse.ReadResultData(nil), 0
	}
	dest = dest[:min(int64(len(dest)), m.size-off)]
	k, err := m.f.ReadAt(dest, off)
	if err != nil && k < len(dest) {
		return nil, fs.ToErrno(err)
	}
	return fuse.ReadResultData(dest[:k]), 0
}

func (n *fnode) Write(ctx context.Context, f fs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	p, m := n.p, n.m
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.faults.write != nil {
		if errno := p.faults.write(m.name); errno != 0 {
			p.stats.FailedWrites++
			return 0, errno
		}
	}
	if p.faults.flip != nil && len(data) > 0 && p.faults.flip(m.name) {
		p.faults.flip = nil
		data = append([]byte(nil), data...)
		data[len(data)/2] ^= 0x10
		p.stats.FlippedBytes++
	}
	end := off + int64(len(data))
	if err := p.save(m, off, end); err != nil {
		return 0, fs.ToErrno(err)
	}
	k, err := m.f.WriteAt(data, off)
	if int64(off)+int64(k) > m.size {
		m.size = off + int64(k)
	}
	p.stats.Writes++
	m.mtim = time.Now()
	if err != nil {
		return uint32(k), fs.ToErrno(err)
	}
	return uint32(k), 0
}

func (n *fnode) Allocate(ctx context.Context, f fs.FileHandle, off uint64, size uint64, mode uint32) syscall.Errno {
	p, m := n.p, n.m
	p.mu.Lock()
	defer p.mu.Unlock()
	end := int64(off + size)
	switch mode {
	case 0:
		if end <= m.size {
			return 0
		}
		// Growing the file: the new bytes read as zeros, like a truncate
		// up (the backing file is left sparse).
		return p.truncate(m, end)
	case unix.FALLOC_FL_KEEP_SIZE:
		return 0 // a reservation only: nothing visible changes
	default:
		return syscall.EOPNOTSUPP
	}
}

func (n *fnode) Flush(ctx context.Context, f fs.FileHandle) syscall.Errno { return 0 }

func (n *fnode) Fsync(ctx context.Context, f fs.FileHandle, flags uint32) syscall.Errno {
	p, m := n.p, n.m
	p.mu.Lock()
	if p.faults.slow != nil && p.faults.slow(m.name) {
		delay := p.faults.slowDelay
		p.stats.SlowSyncs++
		// Outside the lock: a slow sync holds up its caller, not the
		// rest of the file system.
		p.mu.Unlock()
		time.Sleep(delay)
		p.mu.Lock()
	}
	defer p.mu.Unlock()
	if m.dir {
		m.durable = maps.Clone(m.entries)
		p.stats.DirSyncs++
		return 0
	}
	if p.faults.sync != nil {
		if errno := p.faults.sync(m.name); errno != 0 {
			p.stats.FailedSyncs++
			// The kernel marks the pages it failed to write clean: the
			// disk keeps the old bytes, and the next fsync will not try
			// them again.
			for blk, data := range m.undo {
				if m.lost == nil {
					m.lost = map[int64][]byte{}
				}
				m.lost[blk] = data
			}
			m.undo = nil
			// Lost blocks written again since the last failure failed
			// again: clean in the cache, and not on the disk.
			m.redirtied = nil
			return errno
		}
	}
	for blk := range m.redirtied {
		delete(m.lost, blk)
	}
	m.redirtied = nil
	m.undo = nil
	m.syncedSize = m.size
	p.stats.Syncs++
	return 0
}

func (n *fnode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	var st syscall.Statfs_t
	if err := syscall.Statfs(n.p.backing, &st); err != nil {
		return fs.ToErrno(err)
	}
	out.FromStatfsT(&st)
	return 0
}
