package hubble

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	relaypb "github.com/cilium/cilium/api/v1/relay"
	"github.com/go-logr/logr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// DefaultAddress is where the agent serves the observer API in plaintext:
// Hubble's port on the node's loopback, which no pod can reach and `kubectl
// port-forward` to the agent's (host-network) pod reaches under the user's
// RBAC. Remote readers use the mutual-TLS listener (ServerOptions.MutualTLS).
const DefaultAddress = "127.0.0.1:4244"

// HealthServiceName is the service `hubble status` checks over gRPC health
// (Cilium's pkg/hubble/api/v1.ObserverServiceName).
const HealthServiceName = "hubble.server.Observer"

// gracePeriod bounds how long Serve waits for unary calls in flight once its
// context ends before it closes the remaining connections.
const gracePeriod = 5 * time.Second

// ServerOptions configure a Server.
type ServerOptions struct {
	// NodeName is the node this agent runs on, reported by GetNodes.
	NodeName string
	// Version is reported by ServerStatus and GetNodes ("palisade" if empty).
	Version string
	// TLSCertFile and TLSKeyFile, both set, make the server speak TLS with
	// that PEM certificate and key; both empty, plaintext.
	TLSCertFile string
	TLSKeyFile  string
	// MutualTLS, when set, makes the server speak TLS with its credentials
	// and accept only clients with a certificate of its CA; it takes
	// precedence over TLSCertFile and TLSKeyFile.
	MutualTLS *MutualTLS
}

// Server answers the Hubble observer API from a Buffer.
type Server struct {
	observerpb.UnimplementedObserverServer

	buf     *Buffer
	opts    ServerOptions
	started time.Time
}

var _ observerpb.ObserverServer = (*Server)(nil)

// NewServer returns a server for the flows in buf.
func NewServer(buf *Buffer, opts ServerOptions) *Server {
	if opts.Version == "" {
		opts.Version = "palisade"
	}
	return &Server{buf: buf, opts: opts, started: time.Now()}
}

// ListenAndServe listens on addr (DefaultAddress when empty) and serves
// until ctx ends.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	if addr == "" {
		addr = DefaultAddress
	}
	var lc net.ListenConfig
	lis, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	return s.Serve(ctx, lis)
}

// Serve serves the observer API (and gRPC health) on lis until ctx ends,
// then ends follow streams, waits up to gracePeriod for the calls in flight
// and returns nil. It closes lis.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	opts := []grpc.ServerOption{grpc.ChainStreamInterceptor(endStreamsWith(ctx), endStreamsAtCertificateExpiry)}
	switch {
	case s.opts.MutualTLS != nil:
		opts = append(opts, grpc.Creds(credentials.NewTLS(s.opts.MutualTLS.serverConfig())))
	case s.opts.TLSCertFile != "" || s.opts.TLSKeyFile != "":
		cert, err := tls.LoadX509KeyPair(s.opts.TLSCertFile, s.opts.TLSKeyFile)
		if err != nil {
			_ = lis.Close()
			return fmt.Errorf("load TLS key pair: %w", err)
		}
		opts = append(opts, grpc.Creds(credentials.NewTLS(&tls.Config{
			Certificates: []tls.Certificate{cert},
			MinVersion:   tls.VersionTLS12,
		})))
	}
	gs := grpc.NewServer(opts...)
	observerpb.RegisterObserverServer(gs, s)
	hs := health.NewServer()
	hs.SetServingStatus(HealthServiceName, healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus(observerpb.Observer_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)

	log := logr.FromContextOrDiscard(ctx).WithValues("address", lis.Addr().String())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-ctx.Done()
		hs.Shutdown()
		done := make(chan struct{})
		go func() { gs.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-time.After(gracePeriod):
			gs.Stop()
		}
	}()
	log.Info("Serving the Hubble observer API", "tls", s.tls(), "mutualTLS", s.opts.MutualTLS != nil)
	err := gs.Serve(lis)
	if ctx.Err() != nil {
		<-stopped
		return nil
	}
	gs.Stop()
	if err != nil {
		return fmt.Errorf("serve observer API: %w", err)
	}
	return nil
}

// endStreamsWith ends every stream when ctx ends: a follow stream never ends
// by itself, and GracefulStop waits for all streams.
func endStreamsWith(ctx context.Context) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		sctx, cancel := context.WithCancel(ss.Context())
		defer cancel()
		stop := context.AfterFunc(ctx, cancel)
		defer stop()
		return handler(srv, &streamWithContext{ServerStream: ss, ctx: sctx})
	}
}

type streamWithContext struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *streamWithContext) Context() context.Context { return s.ctx }

// GetFlows sends the flows held that the request selects, oldest first,
// and, with follow, the flows observed afterwards until the client leaves.
func (s *Server) GetFlows(req *observerpb.GetFlowsRequest, stream grpc.ServerStreamingServer[observerpb.GetFlowsResponse]) error {
	sel, err := newSelection(req)
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	held, fol := s.buf.snapshot(req.GetFollow())
	if fol != nil {
		defer s.buf.unsubscribe(fol)
	}
	for _, f := range sel.backlog(held) {
		if err := stream.Send(flowResponse(f, sel.mask)); err != nil {
			return err
		}
	}
	if fol == nil {
		return nil
	}

	ctx := stream.Context()
	var untilC <-chan time.Time
	if sel.until != nil {
		t := time.NewTimer(time.Until(*sel.until))
		defer t.Stop()
		untilC = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-untilC:
			return nil
		case f := <-fol.ch:
			if n := fol.lost.Swap(0); n > 0 {
				if err := stream.Send(lostResponse(n)); err != nil {
					return err
				}
			}
			if sel.until != nil && f.GetTime().AsTime().After(*sel.until) {
				return nil
			}
			if !sel.match(f) {
				continue
			}
			if err := stream.Send(flowResponse(f, sel.mask)); err != nil {
				return err
			}
		}
	}
}

// flowResponse wraps a flow; node and time come from the whole flow, so a
// field mask does not hide them.
func flowResponse(f *flowpb.Flow, mask fieldMask) *observerpb.GetFlowsResponse {
	return &observerpb.GetFlowsResponse{
		ResponseTypes: &observerpb.GetFlowsResponse_Flow{Flow: mask.apply(f)},
		NodeName:      f.GetNodeName(),
		Time:          f.GetTime(),
	}
}

// lostResponse tells a follower how many flows it lost by reading too
// slowly, as Hubble does for its own events queue.
func lostResponse(n uint64) *observerpb.GetFlowsResponse {
	return &observerpb.GetFlowsResponse{
		ResponseTypes: &observerpb.GetFlowsResponse_LostEvents{LostEvents: &flowpb.LostEvent{
			Source:        flowpb.LostEventSource_OBSERVER_EVENTS_QUEUE,
			NumEventsLost: n,
		}},
		Time: timestamppb.Now(),
	}
}

// ServerStatus reports the buffer's numbers for this one node.
func (s *Server) ServerStatus(context.Context, *observerpb.ServerStatusRequest) (*observerpb.ServerStatusResponse, error) {
	return &observerpb.ServerStatusResponse{
		NumFlows:            uint64(s.buf.Len()),
		MaxFlows:            uint64(s.buf.Capacity()),
		SeenFlows:           s.buf.Seen(),
		UptimeNs:            s.uptimeNs(),
		NumConnectedNodes:   wrapperspb.UInt32(1),
		NumUnavailableNodes: wrapperspb.UInt32(0),
		Version:             s.opts.Version,
	}, nil
}

// GetNodes reports this node, the only one an agent knows.
func (s *Server) GetNodes(context.Context, *observerpb.GetNodesRequest) (*observerpb.GetNodesResponse, error) {
	return &observerpb.GetNodesResponse{Nodes: []*observerpb.Node{{
		Name:      s.opts.NodeName,
		Version:   s.opts.Version,
		State:     relaypb.NodeState_NODE_CONNECTED,
		Tls:       &observerpb.TLS{Enabled: s.tls()},
		UptimeNs:  s.uptimeNs(),
		NumFlows:  uint64(s.buf.Len()),
		MaxFlows:  uint64(s.buf.Capacity()),
		SeenFlows: s.buf.Seen(),
	}}}, nil
}

// GetNamespaces lists the namespaces of the pods in the flows held.
func (s *Server) GetNamespaces(context.Context, *observerpb.GetNamespacesRequest) (*observerpb.GetNamespacesResponse, error) {
	nss := s.buf.Namespaces()
	out := make([]*observerpb.Namespace, 0, len(nss))
	for _, ns := range nss {
		out = append(out, &observerpb.Namespace{Namespace: ns})
	}
	return &observerpb.GetNamespacesResponse{Namespaces: out}, nil
}

// tls tells whether the server speaks TLS.
func (s *Server) tls() bool { return s.opts.MutualTLS != nil || s.opts.TLSCertFile != "" }

func (s *Server) uptimeNs() uint64 {
	return uint64(time.Since(s.started).Nanoseconds())
}

// selection is what a GetFlows request selects.
type selection struct {
	whitelist, blacklist filterList
	since, until         *time.Time
	mask                 fieldMask
	number               uint64
	first, follow        bool
}

func newSelection(req *observerpb.GetFlowsRequest) (*selection, error) {
	if req.GetFirst() && req.GetFollow() {
		return nil, errors.New("first cannot be combined with follow")
	}
	sel := &selection{number: req.GetNumber(), first: req.GetFirst(), follow: req.GetFollow()}
	var err error
	if sel.whitelist, err = compileFilters(req.GetWhitelist()); err != nil {
		return nil, fmt.Errorf("whitelist: %w", err)
	}
	if sel.blacklist, err = compileFilters(req.GetBlacklist()); err != nil {
		return nil, fmt.Errorf("blacklist: %w", err)
	}
	if sel.mask, err = newFieldMask(req.GetFieldMask()); err != nil {
		return nil, err
	}
	for _, ts := range []struct {
		in  *timestamppb.Timestamp
		out **time.Time
	}{{req.GetSince(), &sel.since}, {req.GetUntil(), &sel.until}} {
		if ts.in == nil {
			continue
		}
		if err := ts.in.CheckValid(); err != nil {
			return nil, fmt.Errorf("invalid time: %w", err)
		}
		t := ts.in.AsTime()
		*ts.out = &t
	}
	return sel, nil
}

// match applies the filters: one whitelist filter must match (any flow when
// there is none) and no blacklist filter may.
func (sel *selection) match(f *flowpb.Flow) bool {
	if len(sel.whitelist) > 0 && !sel.whitelist.any(f) {
		return false
	}
	return !sel.blacklist.any(f)
}

// backlog selects among the flows held (oldest first) those to send before
// following: the last (or first) number that match and fall in
// [since, until]. Without number, all of them, except when following
// without since, which starts with the flows to come, as `hubble observe
// --follow` expects.
func (sel *selection) backlog(held []*flowpb.Flow) []*flowpb.Flow {
	if sel.number == 0 && sel.follow && sel.since == nil {
		return nil
	}
	out := make([]*flowpb.Flow, 0, len(held))
	for _, f := range held {
		t := f.GetTime().AsTime()
		if sel.since != nil && t.Before(*sel.since) {
			continue
		}
		if sel.until != nil && t.After(*sel.until) {
			continue
		}
		if sel.match(f) {
			out = append(out, f)
		}
	}
	if sel.number > 0 && uint64(len(out)) > sel.number {
		if sel.first {
			out = out[:sel.number]
		} else {
			out = out[uint64(len(out))-sel.number:]
		}
	}
	return out
}
