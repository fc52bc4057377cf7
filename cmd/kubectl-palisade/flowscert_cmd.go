package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"k8s.io/client-go/kubernetes"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/client/config"

	"github.com/palisade-dev/palisade/internal/pki"
)

const flowsCertUsage = `Usage: kubectl palisade flows-cert [--dir DIR] [--lifetime 1h] [--kubeconfig FILE]

Gets you a client certificate for the agents' mutual-TLS flow API (port 4245),
signed by Palisade's CA if RBAC lets you get flows.palisade.dev (the
palisade-flows-reader ClusterRole), and writes DIR/flows.key, DIR/flows.crt
and DIR/ca.crt for:

  hubble observe --server <node-ip>:4245 --tls --tls-ca-cert-files DIR/ca.crt \
    --tls-client-cert-file DIR/flows.crt --tls-client-key-file DIR/flows.key
`

func init() {
	register("flows-cert", command{
		summary: "get a short-lived client certificate for the agents' flow API",
		run:     runFlowsCert,
	})
}

func runFlowsCert(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("flows-cert", flag.ExitOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, flowsCertUsage) }
	dir := fs.String("dir", ".", "Directory to write flows.key (mode 0600), flows.crt and ca.crt into.")
	lifetime := fs.Duration("lifetime", pki.MaxClientLifetime, "How long the certificate should be valid (Palisade issues at most 1h).")
	timeout := fs.Duration("timeout", time.Minute, "How long to wait for the controller to sign.")
	ctrlconfig.RegisterFlags(fs) // --kubeconfig
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := ctrlconfig.GetConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	files, err := requestFlowsCert(ctx, cs, *dir, *lifetime)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s, %s and %s for %s, valid until %s\n",
		files.Key, files.Cert, files.CA, files.User, files.NotAfter.Local().Format(time.RFC3339))
	fmt.Fprintf(stdout, "hubble observe --server <node-ip>:4245 --tls --tls-ca-cert-files %s --tls-client-cert-file %s --tls-client-key-file %s\n",
		files.CA, files.Cert, files.Key)
	return nil
}
