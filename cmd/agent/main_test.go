package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/dataplane/agent/agentcache"
)

func TestAPIUnreachable(t *testing.T) {
	gr := schema.GroupResource{Resource: "pods"}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"TLS handshake timeout, wrapped", fmt.Errorf("failed to get restmapping: %w", &url.Error{Op: "Get", URL: "https://x/api", Err: errors.New("net/http: TLS handshake timeout")}), true},
		{"connection refused", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, true},
		{"server unavailable", apierrors.NewServiceUnavailable("starting"), true},
		{"too many requests", apierrors.NewTooManyRequests("slow down", 1), true},
		{"forbidden", apierrors.NewForbidden(gr, "x", errors.New("no")), false},
		{"configuration error", errors.New("unknown field in options"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := apiUnreachable(tc.err); got != tc.want {
				t.Errorf("apiUnreachable(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

// TestNewManagerWaitsForAPIServer: with nothing listening at the API
// server's address the agent keeps retrying (no crash loop) until it is
// stopped, instead of exiting on the first discovery failure.
func TestNewManagerWaitsForAPIServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now: connection refused
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = newManager(ctx, &rest.Config{Host: "http://" + addr}, ctrl.Options{
		Scheme:                 scheme,
		Cache:                  agentcache.Options(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	if err == nil {
		t.Fatal("newManager succeeded without an API server")
	}
	if elapsed := time.Since(start); elapsed < 2*time.Second {
		t.Errorf("newManager gave up after %s (%v), want it to retry until stopped", elapsed, err)
	}
	if !apiUnreachable(err) {
		t.Errorf("final error %v does not say the API server was unreachable", err)
	}
}
