package hubble

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	relaypb "github.com/cilium/cilium/api/v1/relay"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// served is a Server running on a loopback listener.
type served struct {
	client observerpb.ObserverClient
	health healthpb.HealthClient
	addr   string
	stop   func() error // ends Serve and returns what it returned
}

func serve(t *testing.T, buf *Buffer, opts ServerOptions, creds credentials.TransportCredentials) *served {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- NewServer(buf, opts).Serve(ctx, lis) }()
	stopped := false
	var serveErr error
	stop := func() error {
		if !stopped {
			stopped = true
			cancel()
			select {
			case serveErr = <-errc:
			case <-time.After(10 * time.Second):
				serveErr = errors.New("Serve did not return 10 s after its context ended")
			}
		}
		return serveErr
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &served{client: observerpb.NewObserverClient(conn), health: healthpb.NewHealthClient(conn), addr: lis.Addr().String(), stop: stop}
}

// collect runs a non-follow GetFlows and returns the fixture names received.
func collect(t *testing.T, c observerpb.ObserverClient, req *observerpb.GetFlowsRequest) ([]string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := c.GetFlows(ctx, req)
	if err != nil {
		return nil, err
	}
	var got []string
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return got, nil
		}
		if err != nil {
			return got, err
		}
		if resp.GetNodeName() != resp.GetFlow().GetNodeName() || !resp.GetTime().AsTime().Equal(resp.GetFlow().GetTime().AsTime()) {
			t.Errorf("response node %q time %v do not match its flow", resp.GetNodeName(), resp.GetTime().AsTime())
		}
		got = append(got, nameOf(resp.GetFlow()))
	}
}

func TestGetFlowsOverGRPC(t *testing.T) {
	s := serve(t, filledBuffer(0), ServerOptions{NodeName: "node-a"}, nil)
	for _, tc := range filterCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := collect(t, s.client, tc.req)
			if err != nil {
				t.Fatalf("GetFlows: %v", err)
			}
			if want := fixtureNames(tc.want...); !slices.Equal(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
	for _, tc := range invalidRequests {
		t.Run("invalid/"+tc.name, func(t *testing.T) {
			_, err := collect(t, s.client, tc.req)
			if status.Code(err) != codes.InvalidArgument {
				t.Errorf("error %v, want InvalidArgument", err)
			}
		})
	}
}

// recvWithin receives one response or fails after a timeout.
func recvWithin(t *testing.T, ch <-chan *observerpb.GetFlowsResponse, d time.Duration) *observerpb.GetFlowsResponse {
	t.Helper()
	select {
	case r, ok := <-ch:
		if !ok {
			t.Fatal("stream ended")
		}
		return r
	case <-time.After(d):
		t.Fatal("no response in time")
		return nil
	}
}

// follow opens a GetFlows stream and pumps its responses into a channel,
// closed when the stream ends.
func follow(t *testing.T, c observerpb.ObserverClient, req *observerpb.GetFlowsRequest) <-chan *observerpb.GetFlowsResponse {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stream, err := c.GetFlows(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan *observerpb.GetFlowsResponse, 16)
	go func() {
		defer close(ch)
		for {
			r, err := stream.Recv()
			if err != nil {
				return
			}
			ch <- r
		}
	}()
	return ch
}

// expectEnd waits for a follow stream to end without a response and checks
// that it left no follower subscribed to b.
func expectEnd(t *testing.T, b *Buffer, ch <-chan *observerpb.GetFlowsResponse, when string) {
	t.Helper()
	select {
	case _, ok := <-ch:
		if ok {
			t.Errorf("response on a follow stream %s", when)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("follow stream still open %s", when)
	}
	if b.Followers() != 0 {
		t.Errorf("%d followers left subscribed", b.Followers())
	}
}

func waitFollowers(t *testing.T, b *Buffer, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for b.Followers() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d followers, want %d", b.Followers(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestGetFlowsFieldMask(t *testing.T) {
	b := filledBuffer(0)
	s := serve(t, b, ServerOptions{}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := s.client.GetFlows(ctx, &observerpb.GetFlowsRequest{
		Number:    1,
		Whitelist: []*flowpb.FlowFilter{{Protocol: []string{"tcp"}}},
		FieldMask: &fieldmaskpb.FieldMask{Paths: []string{"time", "verdict", "source.pod_name", "l4.TCP.destination_port", "ingress_denied_by"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	full := ToProto(&fixtures[webToV6Dropped].flow)
	want := &flowpb.Flow{
		Time:    full.GetTime(),
		Verdict: flowpb.Verdict_DROPPED,
		Source:  &flowpb.Endpoint{PodName: fixtures[webToV6Dropped].flow.Source.Pod},
		L4:      &flowpb.Layer4{Protocol: &flowpb.Layer4_TCP{TCP: &flowpb.TCP{DestinationPort: 443}}},
	}
	if !proto.Equal(resp.GetFlow(), want) {
		t.Errorf("masked flow\n%v\nwant\n%v", resp.GetFlow(), want)
	}
	if resp.GetNodeName() != "node-a" {
		t.Errorf("response node %q, want node-a despite the mask", resp.GetNodeName())
	}
	// The flow held keeps all its fields.
	held, _ := b.snapshot(false)
	if !proto.Equal(held[webToV6Dropped], full) {
		t.Error("the field mask modified the flow held in the buffer")
	}
}

func TestGetFlowsFollow(t *testing.T) {
	b := NewBuffer(0)
	for i := range 3 {
		b.Observe(&fixtures[i].flow)
	}
	s := serve(t, b, ServerOptions{NodeName: "node-a"}, nil)

	// The last flow held, then the flows observed afterwards, filtered.
	ch := follow(t, s.client, &observerpb.GetFlowsRequest{
		Number: 1, Follow: true,
		Blacklist: []*flowpb.FlowFilter{{Protocol: []string{"sctp"}}},
	})
	if got := nameOf(recvWithin(t, ch, 10*time.Second).GetFlow()); got != fixtures[webToDNS].name {
		t.Fatalf("backlog flow %s, want %s", got, fixtures[webToDNS].name)
	}
	for i := 3; i < len(fixtures); i++ {
		b.Observe(&fixtures[i].flow)
	}
	for _, want := range fixtureNames(webToV6Dropped, apiPingLedger) {
		if got := nameOf(recvWithin(t, ch, 10*time.Second).GetFlow()); got != want {
			t.Errorf("followed flow %s, want %s", got, want)
		}
	}

	// Without number, following starts with the flows to come.
	drops := follow(t, s.client, &observerpb.GetFlowsRequest{
		Follow: true, Whitelist: []*flowpb.FlowFilter{{Verdict: []flowpb.Verdict{flowpb.Verdict_DROPPED}}},
	})
	waitFollowers(t, b, 2)
	for i := range fixtures {
		b.Observe(&fixtures[i].flow)
	}
	for _, want := range fixtureNames(ledgerToAPIDropped, webToV6Dropped) {
		if got := nameOf(recvWithin(t, drops, 10*time.Second).GetFlow()); got != want {
			t.Errorf("followed drop %s, want %s", got, want)
		}
	}
	select {
	case r := <-drops:
		t.Errorf("unexpected response %v", r)
	case <-time.After(100 * time.Millisecond):
	}
}

// A follower that reads too slowly is told how many flows it lost: every
// flow observed is either delivered or counted in a LostEvent.
func TestGetFlowsFollowReportsLostFlows(t *testing.T) {
	b := NewBuffer(16)
	s := serve(t, b, ServerOptions{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := s.client.GetFlows(ctx, &observerpb.GetFlowsRequest{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	waitFollowers(t, b, 1)
	// Far more than the follower queue and gRPC's flow-control window
	// hold while the client does not read.
	const flood = 5000
	for i := range flood {
		b.Observe(numbered(i % 1000))
	}
	ch := make(chan *observerpb.GetFlowsResponse, 64)
	go func() {
		defer close(ch)
		for {
			r, err := stream.Recv()
			if err != nil {
				return
			}
			ch <- r
		}
	}()
	observed, received, lost := flood, uint64(0), uint64(0)
	// Sentinels (distinct time) flush the count of flows lost last: a loss
	// is reported before the next flow delivered.
	for k := 0; ; k++ {
		if k > 100 {
			t.Fatal("no sentinel flow came through")
		}
		sentinel := numbered(0)
		sentinel.Time = t0.Add(time.Hour + time.Duration(k))
		b.Observe(sentinel)
		observed++
		done := false
	drain:
		for {
			select {
			case r := <-ch:
				if n := r.GetLostEvents().GetNumEventsLost(); n > 0 {
					if r.GetLostEvents().GetSource() != flowpb.LostEventSource_OBSERVER_EVENTS_QUEUE {
						t.Errorf("lost event source %v", r.GetLostEvents().GetSource())
					}
					lost += n
				}
				if f := r.GetFlow(); f != nil {
					received++
					if f.GetTime().AsTime().Equal(sentinel.Time) {
						done = true
						break drain
					}
				}
			case <-time.After(300 * time.Millisecond):
				break drain
			}
		}
		if done {
			break
		}
	}
	if lost == 0 {
		t.Errorf("no flow lost out of %d sent to a follower that did not read", flood)
	}
	if received+lost != uint64(observed) {
		t.Errorf("received %d + lost %d != observed %d", received, lost, observed)
	}
	if b.Lost() != lost {
		t.Errorf("buffer counted %d lost, follower was told %d", b.Lost(), lost)
	}
}

func TestServerStatusNodesNamespaces(t *testing.T) {
	b := filledBuffer(4) // 6 flows seen, 4 held
	s := serve(t, b, ServerOptions{NodeName: "node-a", Version: "v9.9.9"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	st, err := s.client.ServerStatus(ctx, &observerpb.ServerStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st.GetNumFlows() != 4 || st.GetMaxFlows() != 4 || st.GetSeenFlows() != 6 ||
		st.GetNumConnectedNodes().GetValue() != 1 || st.GetNumUnavailableNodes().GetValue() != 0 ||
		st.GetVersion() != "v9.9.9" || st.GetUptimeNs() == 0 {
		t.Errorf("ServerStatus %v", st)
	}

	nodes, err := s.client.GetNodes(ctx, &observerpb.GetNodesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes.GetNodes()) != 1 {
		t.Fatalf("GetNodes %v, want one node", nodes)
	}
	n := nodes.GetNodes()[0]
	if n.GetName() != "node-a" || n.GetState() != relaypb.NodeState_NODE_CONNECTED || n.GetNumFlows() != 4 ||
		n.GetMaxFlows() != 4 || n.GetSeenFlows() != 6 || n.GetTls().GetEnabled() || n.GetVersion() != "v9.9.9" {
		t.Errorf("node %v", n)
	}

	nss, err := s.client.GetNamespaces(ctx, &observerpb.GetNamespacesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ns := range nss.GetNamespaces() {
		got = append(got, ns.GetNamespace())
	}
	if want := []string{"billing", "shop"}; !slices.Equal(got, want) {
		t.Errorf("namespaces %v, want %v", got, want)
	}

	// `hubble status` checks this service's health first.
	hc, err := s.health.Check(ctx, &healthpb.HealthCheckRequest{Service: HealthServiceName})
	if err != nil || hc.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health of %s: %v %v", HealthServiceName, hc, err)
	}

	ev, err := s.client.GetAgentEvents(ctx, &observerpb.GetAgentEventsRequest{})
	if err == nil {
		_, err = ev.Recv()
	}
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("GetAgentEvents: %v, want Unimplemented", err)
	}
}

// Ending Serve's context ends follow streams and Serve returns nil well
// within the grace period.
func TestServeStopsOnContextEnd(t *testing.T) {
	b := NewBuffer(0)
	s := serve(t, b, ServerOptions{}, nil)
	ch := follow(t, s.client, &observerpb.GetFlowsRequest{Follow: true})
	waitFollowers(t, b, 1)
	start := time.Now()
	if err := s.stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if d := time.Since(start); d >= gracePeriod {
		t.Errorf("Serve took %v to stop, the follow stream held it", d)
	}
	expectEnd(t, b, ch, "after Serve returned")
}

func TestListenAndServeBadAddress(t *testing.T) {
	err := NewServer(NewBuffer(0), ServerOptions{}).ListenAndServe(context.Background(), "127.0.0.1:99999")
	if err == nil {
		t.Error("ListenAndServe on an invalid port returned nil")
	}
}

func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM := selfSigned(t)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(certPEM) {
		t.Fatal("bad test certificate")
	}
	opts := ServerOptions{NodeName: "node-a", TLSCertFile: certFile, TLSKeyFile: keyFile}
	s := serve(t, filledBuffer(0), opts,
		credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: "hubble.palisade.test", MinVersion: tls.VersionTLS12}))

	got, err := collect(t, s.client, &observerpb.GetFlowsRequest{Number: 2})
	if err != nil {
		t.Fatalf("GetFlows over TLS: %v", err)
	}
	if want := fixtureNames(webToV6Dropped, apiPingLedger); !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nodes, err := s.client.GetNodes(ctx, &observerpb.GetNodesRequest{})
	if err != nil || !nodes.GetNodes()[0].GetTls().GetEnabled() {
		t.Errorf("GetNodes over TLS: %v %v", nodes, err)
	}

	// A plaintext client is refused.
	conn, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := observerpb.NewObserverClient(conn).ServerStatus(ctx, &observerpb.ServerStatusRequest{}); err == nil {
		t.Error("plaintext client served by a TLS server")
	}
}

func TestServeTLSMissingKey(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opts := ServerOptions{TLSCertFile: filepath.Join(t.TempDir(), "missing.crt")}
	if err := NewServer(NewBuffer(0), opts).Serve(context.Background(), lis); err == nil {
		t.Error("Serve with a missing key pair returned nil")
	}
}

// selfSigned returns a PEM certificate for hubble.palisade.test and its key.
func selfSigned(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "hubble.palisade.test"},
		DNSNames:     []string{"hubble.palisade.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

// Following with until ends the stream at that time.
func TestGetFlowsFollowUntil(t *testing.T) {
	b := NewBuffer(0)
	s := serve(t, b, ServerOptions{}, nil)
	ch := follow(t, s.client, &observerpb.GetFlowsRequest{Follow: true, Until: timestamppb.New(time.Now().Add(300 * time.Millisecond))})
	expectEnd(t, b, ch, "with until, no flow observed")
}
