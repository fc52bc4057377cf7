// Package certificates is Palisade's certificate signer: it approves and
// signs the CertificateSigningRequests of Palisade's two signers
// (internal/pki) with Palisade's own CA, and leaves every other request
// alone. An agent gets a serving certificate for the node its pod runs on
// and nothing else; a person or tool gets a short-lived flows client
// certificate when RBAC lets them read flows.
package certificates

import (
	"context"
	"crypto/x509"
	"fmt"
	"slices"
	"sync"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/palisade-dev/palisade/internal/pki"
)

// +kubebuilder:rbac:groups=certificates.k8s.io,resources=certificatesigningrequests,verbs=get;list;watch
// +kubebuilder:rbac:groups=certificates.k8s.io,resources=certificatesigningrequests/approval,verbs=update
// +kubebuilder:rbac:groups=certificates.k8s.io,resources=certificatesigningrequests/status,verbs=update
// +kubebuilder:rbac:groups=certificates.k8s.io,resources=signers,resourceNames=palisade.dev/agent-serving;palisade.dev/flows-client,verbs=approve;sign
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

// FlowsAccess is what a flows-client requester must be allowed to do: get
// the virtual resource flows of group palisade.dev (cluster-wide; an agent
// serves the flows of every namespace on its node). The
// palisade-flows-reader ClusterRole (config/rbac) grants it.
var FlowsAccess = authorizationv1.ResourceAttributes{Group: "palisade.dev", Resource: "flows", Verb: "get"}

// Reconciler approves or denies, then signs, the requests of Palisade's
// signers.
type Reconciler struct {
	client.Client
	// APIReader reads Nodes' addresses, which the controller's cache strips.
	// APIReader also reads the CA Secret, which the controller may get by
	// name only.
	APIReader client.Reader
	// CASecret is the Secret holding Palisade's CA, made on first use.
	CASecret client.ObjectKey
	// AgentUser is the agent service account's user name,
	// system:serviceaccount:<namespace>:palisade-agent.
	AgentUser string
	// Now is the clock (time.Now when nil).
	Now func() time.Time

	mu sync.Mutex
	ca *pki.CA
}

// SetupWithManager watches the requests of Palisade's signers only.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	ours := predicate.NewPredicateFuncs(func(o client.Object) bool {
		csr, ok := o.(*certificatesv1.CertificateSigningRequest)
		return ok && isOurSigner(csr.Spec.SignerName)
	})
	return ctrl.NewControllerManagedBy(mgr).
		Named("certificates").
		For(&certificatesv1.CertificateSigningRequest{}, builder.WithPredicates(ours)).
		Complete(r)
}

func isOurSigner(name string) bool {
	return name == pki.SignerAgentServing || name == pki.SignerFlowsClient
}

// Reconcile decides one request and, if it passes, signs it. The checks run
// before signing even when someone else approved the request: whoever may
// approve for these signers must not be able to get a certificate for
// another node through them.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	csr := &certificatesv1.CertificateSigningRequest{}
	if err := r.Get(ctx, req.NamespacedName, csr); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !isOurSigner(csr.Spec.SignerName) || len(csr.Status.Certificate) > 0 ||
		hasCondition(csr, certificatesv1.CertificateDenied) || hasCondition(csr, certificatesv1.CertificateFailed) {
		return ctrl.Result{}, nil
	}
	logger := log.FromContext(ctx).WithValues("signer", csr.Spec.SignerName, "requester", csr.Spec.Username)
	x509req, refusal, err := r.check(ctx, csr)
	if err != nil {
		return ctrl.Result{}, err
	}
	if refusal != nil {
		logger.Info("refusing certificate request", "reason", refusal.Error())
		return ctrl.Result{}, r.refuse(ctx, csr, refusal)
	}
	if !hasCondition(csr, certificatesv1.CertificateApproved) {
		csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
			Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue,
			Reason: "PalisadeApproved", Message: "the requester may hold this certificate", LastUpdateTime: metav1.Now(),
		})
		if err := r.SubResource("approval").Update(ctx, csr); err != nil {
			return ctrl.Result{}, fmt.Errorf("approve %s: %w", csr.Name, err)
		}
	}
	ca, err := r.loadCA(ctx)
	if err != nil {
		return ctrl.Result{}, err
	}
	cert, err := ca.Issue(x509req, pki.ExtKeyUsage(csr.Spec.SignerName), r.now(), lifetime(csr))
	if err != nil {
		return ctrl.Result{}, err
	}
	// The chain ends with the CA: the agent trusts client certificates of
	// that CA, and a flows client trusts agents of it, with nothing more to
	// fetch.
	csr.Status.Certificate = pki.EncodeCertificates(cert, ca.Cert)
	if err := r.Status().Update(ctx, csr); err != nil {
		return ctrl.Result{}, fmt.Errorf("sign %s: %w", csr.Name, err)
	}
	logger.Info("issued certificate", "csr", csr.Name, "subject", cert.Subject.CommonName, "notAfter", cert.NotAfter)
	return ctrl.Result{}, nil
}

// loadCA returns the CA, reading (or making) its Secret the first time.
// Loading it here rather than at start keeps a controller whose namespace has
// no Secret yet (or cannot have one) running everything else.
func (r *Reconciler) loadCA(ctx context.Context) (*pki.CA, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ca == nil {
		ca, err := LoadOrCreateCA(ctx, r.APIReader, r.Client, r.CASecret)
		if err != nil {
			return nil, err
		}
		r.ca = ca
	}
	return r.ca, nil
}

// check parses the request and tells why it must not be signed (refusal),
// or an error when that cannot be decided now.
func (r *Reconciler) check(ctx context.Context, csr *certificatesv1.CertificateSigningRequest) (*x509.CertificateRequest, error, error) {
	x509req, err := pki.ParseRequestPEM(csr.Spec.Request)
	if err != nil {
		return nil, err, nil
	}
	switch csr.Spec.SignerName {
	case pki.SignerAgentServing:
		var node *corev1.Node
		if name, err := requestingNode(csr); err == nil {
			n := &corev1.Node{}
			switch err := r.APIReader.Get(ctx, client.ObjectKey{Name: name}, n); {
			case err == nil:
				node = n
			case !apierrors.IsNotFound(err):
				return nil, nil, fmt.Errorf("get node %s: %w", name, err)
			}
		}
		return x509req, checkAgentServing(csr, x509req, r.AgentUser, node), nil
	default:
		if refusal := checkFlowsClientRequest(csr, x509req); refusal != nil {
			return nil, refusal, nil
		}
		allowed, err := r.mayReadFlows(ctx, csr)
		if err != nil {
			return nil, nil, err
		}
		if !allowed {
			return nil, fmt.Errorf("%q may not %s %s.%s", csr.Spec.Username, FlowsAccess.Verb, FlowsAccess.Resource, FlowsAccess.Group), nil
		}
		return x509req, nil, nil
	}
}

// mayReadFlows asks the API server whether the requester, as the request
// records it, may read flows.
func (r *Reconciler) mayReadFlows(ctx context.Context, csr *certificatesv1.CertificateSigningRequest) (bool, error) {
	extra := make(map[string]authorizationv1.ExtraValue, len(csr.Spec.Extra))
	for k, v := range csr.Spec.Extra {
		extra[k] = authorizationv1.ExtraValue(v)
	}
	attrs := FlowsAccess
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: csr.Spec.Username, Groups: csr.Spec.Groups, UID: csr.Spec.UID, Extra: extra, ResourceAttributes: &attrs,
	}}
	if err := r.Create(ctx, sar); err != nil {
		return false, fmt.Errorf("authorize %q to read flows: %w", csr.Spec.Username, err)
	}
	return sar.Status.Allowed, nil
}

// refuse denies a request not yet approved, and fails one someone else
// approved.
func (r *Reconciler) refuse(ctx context.Context, csr *certificatesv1.CertificateSigningRequest, why error) error {
	cond := certificatesv1.CertificateSigningRequestCondition{
		Status: corev1.ConditionTrue, Message: why.Error(), LastUpdateTime: metav1.Now(),
	}
	if hasCondition(csr, certificatesv1.CertificateApproved) {
		cond.Type, cond.Reason = certificatesv1.CertificateFailed, "PalisadeSignerRefused"
		csr.Status.Conditions = append(csr.Status.Conditions, cond)
		if err := r.Status().Update(ctx, csr); err != nil {
			return fmt.Errorf("fail %s: %w", csr.Name, err)
		}
		return nil
	}
	cond.Type, cond.Reason = certificatesv1.CertificateDenied, "PalisadeDenied"
	csr.Status.Conditions = append(csr.Status.Conditions, cond)
	if err := r.SubResource("approval").Update(ctx, csr); err != nil {
		return fmt.Errorf("deny %s: %w", csr.Name, err)
	}
	return nil
}

// lifetime is what the request asks for (spec.expirationSeconds), within
// what its signer issues.
func lifetime(csr *certificatesv1.CertificateSigningRequest) time.Duration {
	maxLife := pki.MaxLifetime(csr.Spec.SignerName)
	if csr.Spec.ExpirationSeconds == nil {
		return maxLife
	}
	return min(max(time.Duration(*csr.Spec.ExpirationSeconds)*time.Second, pki.MinLifetime), maxLife)
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func hasCondition(csr *certificatesv1.CertificateSigningRequest, t certificatesv1.RequestConditionType) bool {
	return slices.ContainsFunc(csr.Status.Conditions, func(c certificatesv1.CertificateSigningRequestCondition) bool {
		return c.Type == t && c.Status == corev1.ConditionTrue
	})
}
