// Command kubectl-palisade is Palisade's kubectl plugin (`kubectl palisade`).
//
// `kubectl palisade flows-cert` gets the current user a short-lived client
// certificate for the agents' mutual-TLS flow API: it makes a key, sends a
// CertificateSigningRequest of signer palisade.dev/flows-client, which
// Palisade's controller signs when RBAC lets the user get
// flows.palisade.dev (the palisade-flows-reader ClusterRole), and writes
// the key, the certificate and Palisade's CA where `hubble observe --tls`
// reads them.
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

const usage = `Usage: kubectl palisade flows-cert [--dir DIR] [--lifetime 1h] [--kubeconfig FILE]

Gets you a client certificate for the agents' mutual-TLS flow API (port 4245),
signed by Palisade's CA if RBAC lets you get flows.palisade.dev, and writes
DIR/flows.key, DIR/flows.crt and DIR/ca.crt for:

  hubble observe --server <node-ip>:4245 --tls --tls-ca-cert-files DIR/ca.crt \
    --tls-client-cert-file DIR/flows.crt --tls-client-key-file DIR/flows.key
`

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kubectl-palisade:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "flows-cert" {
		fmt.Fprint(os.Stderr, usage)
		return fmt.Errorf("unknown command %q: want flows-cert", args)
	}
	fs := flag.NewFlagSet("flows-cert", flag.ExitOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, usage) }
	dir := fs.String("dir", ".", "Directory to write flows.key (mode 0600), flows.crt and ca.crt into.")
	lifetime := fs.Duration("lifetime", pki.MaxClientLifetime, "How long the certificate should be valid (Palisade issues at most 1h).")
	timeout := fs.Duration("timeout", time.Minute, "How long to wait for the controller to sign.")
	ctrlconfig.RegisterFlags(fs) // --kubeconfig
	if err := fs.Parse(args[1:]); err != nil {
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
