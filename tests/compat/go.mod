module github.com/cairnkv/cairn/tests/compat

go 1.26.0
