package controllers

// The metrics endpoint (internal/securemetrics) asks the API server to
// authenticate each scraper's token and to authorize its request.
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create
