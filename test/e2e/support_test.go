package e2e_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/testenv"
)

// waitFinalizerGone waits until the watcher let the Pod go.
func waitFinalizerGone(t *testing.T, p corev1.Pod) {
	t.Helper()
	err := testenv.Eventually(t.Context(), 20*time.Second, func(ctx context.Context) (bool, error) {
		var cur corev1.Pod
		if err := env.Client.Get(ctx, key(p), &cur); err != nil {
			return apierrors.IsNotFound(err), err
		}
		return !controllerutil.ContainsFinalizer(&cur, orcav1.FinalizerCompletion), nil
	})
	require.NoError(t, err, "pod %s keeps its finalizer", p.Name)
}
