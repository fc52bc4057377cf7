module github.com/palisade-dev/palisade/hack/tools/coredns

go 1.26
