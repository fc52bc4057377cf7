package agent

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/dataplane/agent/agentcache"
)

// Start runs the loop until ctx ends (manager.Runnable). The kernel state is
// left as it is when it returns: rules stay in place (fail closed).
func (a *Agent) Start(ctx context.Context) error {
	logger := log.FromContext(ctx).WithValues("node", a.NodeName)
	ctx = log.IntoContext(ctx, logger)
	if a.trigger == nil {
		return errors.New("agent: not made by New")
	}
	if err := a.watchAll(ctx); err != nil {
		return err
	}
	if !a.Cache.WaitForCacheSync(ctx) {
		return errors.New("agent: caches did not sync")
	}
	logger.Info("caches synced, starting sync loop", "audit", a.audit)
	if a.Flows != nil {
		go a.Flows.Run(ctx)
	}
	a.kick()
	return a.loop(ctx)
}

// watchAll starts the informers of every kind a sync reads. Without
// ServiceIntents in the cache's scheme the agent runs without audit.
func (a *Agent) watchAll(ctx context.Context) error {
	for _, obj := range agentcache.EnforcedObjects() {
		if err := a.watch(ctx, obj); err != nil {
			return err
		}
	}
	a.audit = true
	if err := a.watch(ctx, &v1alpha1.ServiceIntent{}); notRegistered(err) {
		// Audit policies only log and accept: without them nothing is
		// opened or closed, only Audit-mode intents go unreported.
		log.FromContext(ctx).Error(err, "the scheme has no ServiceIntent: Audit-mode intents are not programmed")
		a.audit = false
		return nil
	} else if err != nil {
		return err
	}
	for _, obj := range agentcache.ResolvedObjects() {
		if err := a.watch(ctx, obj); err != nil {
			return err
		}
	}
	return nil
}

// watch starts the informer of obj's type and syncs on its every event.
func (a *Agent) watch(ctx context.Context, obj client.Object) error {
	inf, err := a.Cache.GetInformer(ctx, obj)
	if err != nil {
		return fmt.Errorf("get informer for %T: %w", obj, err)
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { a.kick() },
		UpdateFunc: func(old, cur any) {
			if specChanged(old, cur) {
				a.kick()
			}
		},
		DeleteFunc: func(any) { a.kick() },
	}); err != nil {
		return fmt.Errorf("watch %T: %w", obj, err)
	}
	return nil
}

// specChanged filters intent updates: the controller writes each intent's
// status every few seconds (observed flows), which changes nothing the agent
// compiles; only a new generation or a deletion does. Other kinds always
// count.
func specChanged(old, cur any) bool {
	o, ok1 := old.(*v1alpha1.ServiceIntent)
	c, ok2 := cur.(*v1alpha1.ServiceIntent)
	if !ok1 || !ok2 {
		return true
	}
	return o.Generation != c.Generation || !o.DeletionTimestamp.Equal(c.DeletionTimestamp)
}

func notRegistered(err error) bool {
	for ; err != nil; err = errors.Unwrap(err) {
		if runtime.IsNotRegisteredError(err) {
			return true
		}
	}
	return false
}

func (a *Agent) kick() {
	select {
	case a.trigger <- struct{}{}:
	default:
	}
}
