# One image holds both binaries: the controller (Deployment) and the agent
# (DaemonSet). Static binaries; the final stage runs as a non-root user
# (the agent DaemonSet overrides it: it needs uid 0 with only NET_ADMIN).
FROM golang:1.26 AS builder
ARG TARGETOS=linux
ARG TARGETARCH=amd64
WORKDIR /workspace
COPY go.mod go.sum ./
RUN go mod download
COPY api/ api/
COPY cmd/ cmd/
COPY controllers/ controllers/
COPY dataplane/ dataplane/
COPY internal/ internal/
RUN CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath -ldflags='-s -w' -o /out/controller ./cmd/controller \
 && CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath -ldflags='-s -w' -o /out/agent ./cmd/agent

# The nftables backend talks netlink directly and needs no binary, but the
# iptables fallback drives iptables-restore, so the final stage carries the
# iptables package (nf_tables and legacy variants) and nothing else.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends iptables \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /
COPY --from=builder /out/controller /out/agent /
USER 65532:65532
ENTRYPOINT ["/controller"]
