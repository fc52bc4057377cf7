module github.com/palisade-dev/palisade/hack/tools/real-nodes

go 1.26
