package v1alpha1

// TaintAgentNotReady is the key of the NoSchedule taint a node registers
// with (kubelet `--register-with-taints=palisade.dev/agent-not-ready=:NoSchedule`)
// so that no pod is scheduled there before the node's Palisade agent
// enforces policy. The controller removes it, and only it, once the agent
// pod on that node is Ready (the agent's readiness probe passes only after
// its first full sync); the agent DaemonSet tolerates every taint, so it
// starts on a tainted node. Nodes registered without it are never written.
const TaintAgentNotReady = "palisade.dev/agent-not-ready"
