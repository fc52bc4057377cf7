package v1alpha1

// Condition types on a ServiceIntent's status.
const (
	// ConditionReady is True when the target and every caller resolved and
	// the intent's NetworkPolicies are in place. False carries the reason of
	// Resolved or PolicyApplied, or ReconcileFailed when the reconcile failed
	// before it could compute the status (the message holds the error).
	ConditionReady = "Ready"
	// ConditionResolved is True when the target and all callers resolved to
	// pod selectors. False names the first kind of failure in its reason.
	ConditionResolved = "Resolved"
	// ConditionPolicyApplied is True when the NetworkPolicies the intent calls
	// for (none in Audit mode) have been written and stale ones removed.
	ConditionPolicyApplied = "PolicyApplied"
	// ConditionEnforced is True when every node that runs target pods reports
	// the intent's current generation programmed in its kernel.
	ConditionEnforced = "Enforced"
	// ConditionTrafficConforms is True when no undeclared caller of the target
	// was observed within the observation window.
	ConditionTrafficConforms = "TrafficConforms"
)

// Condition reasons.
const (
	// ReasonResolved: the target and every caller resolved.
	ReasonResolved = "Resolved"
	// ReasonTargetNotFound: the target reference does not exist or selects
	// no pods by design (a Service without a selector); no policy is written.
	ReasonTargetNotFound = "TargetNotFound"
	// ReasonCallerNotFound: at least one caller does not resolve; it is
	// granted nothing (fail closed) and the other callers still apply.
	ReasonCallerNotFound = "CallerNotFound"
	// ReasonCompileFailed: turning the resolved intent into NetworkPolicies
	// failed. The target is isolated (an ingress policy without rules) until
	// the intent compiles again; the message says why.
	ReasonCompileFailed = "CompileFailed"
	// ReasonApplied: the NetworkPolicies were written with server-side apply.
	ReasonApplied = "Applied"
	// ReasonApplyFailed: writing or deleting a NetworkPolicy failed.
	ReasonApplyFailed = "ApplyFailed"
	// ReasonReconcileFailed: the reconcile failed before it could compute the
	// intent's status (reading the cluster, adding the finalizer); Ready's
	// message holds the error, and the other conditions are left as the last
	// full reconcile set them.
	ReasonReconcileFailed = "ReconcileFailed"
	// ReasonAuditMode: the intent is in Audit mode, so the controller writes no
	// NetworkPolicy for it (the agents report what Enforce would drop).
	ReasonAuditMode = "AuditMode"
	// ReasonReady: everything the intent asks for is in force.
	ReasonReady = "Ready"
	// ReasonProgrammed: every node that runs target pods programmed the
	// current generation (Enforced=True).
	ReasonProgrammed = "Programmed"
	// ReasonProgramming: some nodes have not programmed the current generation
	// yet; the message reads "n/m nodes".
	ReasonProgramming = "Programming"
	// ReasonNoTargetPods: no pod is selected, so no node has anything to
	// program (Enforced=True, vacuously).
	ReasonNoTargetPods = "NoTargetPods"
	// ReasonNoUndeclaredCallers: every observed caller is declared.
	ReasonNoUndeclaredCallers = "NoUndeclaredCallers"
	// ReasonUndeclaredCallersObserved: callers that no entry allows were
	// observed (dropped, or audited in Audit mode).
	ReasonUndeclaredCallersObserved = "UndeclaredCallersObserved"
)

// Event reasons recorded on a ServiceIntent.
const (
	// EventPolicyCreated: a NetworkPolicy was created for the intent.
	EventPolicyCreated = "PolicyCreated"
	// EventPolicyUpdated: a NetworkPolicy of the intent was changed.
	EventPolicyUpdated = "PolicyUpdated"
	// EventPolicyDeleted: a NetworkPolicy the intent no longer needs was removed.
	EventPolicyDeleted = "PolicyDeleted"
	// EventCallerNotFound: a caller stopped resolving (warning).
	EventCallerNotFound = "CallerNotFound"
	// EventTargetNotFound: the target stopped resolving (warning).
	EventTargetNotFound = "TargetNotFound"
	// EventCompileFailed: compiling the intent failed; its target is isolated
	// (warning).
	EventCompileFailed = "CompileFailed"
	// EventApplyFailed: writing a NetworkPolicy failed (warning).
	EventApplyFailed = "ApplyFailed"
	// EventUndeclaredCaller: a new undeclared caller was observed (warning,
	// rate-limited per intent).
	EventUndeclaredCaller = "UndeclaredCaller"
)

// Labels the controller puts on every object it generates.
const (
	// LabelManagedBy marks generated objects; its value is ManagedByValue.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedByValue is the value of LabelManagedBy on Palisade's objects.
	ManagedByValue = "palisade"
	// LabelIntent holds the name of the intent a NetworkPolicy belongs to.
	LabelIntent = "palisade.dev/intent"
	// LabelIntentNamespace holds the namespace of that intent.
	LabelIntentNamespace = "palisade.dev/intent-namespace"
	// LabelIntentGeneration holds the intent generation a NetworkPolicy was
	// compiled from; agents report it back as programmed.
	LabelIntentGeneration = "palisade.dev/intent-generation"
	// LabelZeroTrust on a Namespace opts it into zero trust when its value is
	// ZeroTrustEnforce, or into observation when it is ZeroTrustObserve.
	LabelZeroTrust = "palisade.dev/zero-trust"
	// ZeroTrustEnforce is the value of LabelZeroTrust that turns zero trust on.
	ZeroTrustEnforce = "enforce"
	// ZeroTrustObserve is the value of LabelZeroTrust that makes agents log
	// the first packet of every new connection to and from the namespace's
	// pods, policed or not, without changing any verdict. The controller keeps
	// what they saw in the namespace's TrafficHistory.
	ZeroTrustObserve = "observe"
	// Finalizer lets the controller remove the intent's NetworkPolicies in other
	// namespaces, which owner references cannot reach.
	Finalizer = "palisade.dev/networkpolicies"
)
