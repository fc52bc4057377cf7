module github.com/palisade-dev/palisade/hack/tools/netpol-e2e

go 1.26
