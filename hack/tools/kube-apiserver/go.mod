module github.com/palisade-dev/palisade/hack/tools/kube-apiserver

go 1.26
