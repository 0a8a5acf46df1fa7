module github.com/cairnkv/cairn/tests/faults

go 1.26.0

replace github.com/cairnkv/cairn => ../..

require (
	github.com/hanwen/go-fuse/v2 v2.12.1
	golang.org/x/sys v0.50.0
)
