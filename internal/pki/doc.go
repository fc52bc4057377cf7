// Package pki is Palisade's own small certificate authority and the
// certificate signing requests the agents and flow readers send it, through
// the API server's certificates.k8s.io/v1 CertificateSigningRequests: the
// signer names, the usages each signer issues, and the X.509 work both
// sides share (keys, requests, signing, PEM).
package pki
