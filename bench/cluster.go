package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sirocco-cloud/orca/internal/controlplane"
	"github.com/sirocco-cloud/orca/internal/testenv"
)

// cluster is the local control plane and the bench's own clients.
type cluster struct {
	env *testenv.Env
	// cfg reaches the API server as admin with client-side throttling off.
	cfg *rest.Config
	// cs speaks protobuf; cl (controller-runtime) is for Orca's CRDs.
	cs  kubernetes.Interface
	cl  client.Client
	tmp string
	// marks records when each step of a hop happened, for the breakdown.
	marks *marks
}

func startCluster(tmp string) (*cluster, error) {
	env, err := testenv.Start()
	if err != nil {
		return nil, err
	}
	c := &cluster{env: env, tmp: tmp, cfg: unthrottled(env.Config), marks: newMarks()}
	if c.cs, err = kubernetes.NewForConfig(protobuf(c.cfg)); err != nil {
		return nil, err
	}
	if c.cl, err = client.New(c.cfg, client.Options{Scheme: env.Scheme}); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *cluster) stop() error { return c.env.Stop() }

// unthrottled copies cfg with client-side rate limiting off.
func unthrottled(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = -1, -1
	return cfg
}

// protobuf copies cfg to speak protobuf (built-in types only).
func protobuf(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	return cfg
}

func (c *cluster) namespace(ctx context.Context, name string) error {
	_, err := c.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// podTemplate is the Pod of every case: Orca's Tasks, the floor's Pods and Jobs.
func podTemplate(labels map[string]string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{
				Name:    "step",
				Image:   "busybox",
				Command: []string{"sh", "-c", "echo \"$ORCA_DATA\" > /dev/termination-log"},
			}},
		},
	}
}

// endPod plays the kubelet: one status patch that ends the Pod Succeeded with a
// termination message. It returns the bench's clock just before the call, and
// records when the call returned.
func (c *cluster) endPod(ctx context.Context, pod *corev1.Pod, message string) (time.Time, error) {
	return c.endPodWith(ctx, pod, 0, message)
}

// endPodWith is endPod with the first container's exit code: a Pod with a
// non-zero one ends Failed.
func (c *cluster) endPodWith(ctx context.Context, pod *corev1.Pod, exitCode int32, message string) (time.Time, error) {
	now := metav1.Now()
	phase := corev1.PodSucceeded
	var statuses []corev1.ContainerStatus
	for i, ctr := range pod.Spec.Containers {
		term := &corev1.ContainerStateTerminated{Reason: "Completed", StartedAt: now, FinishedAt: now}
		if i == 0 {
			term.Message = message
			if exitCode != 0 {
				term.ExitCode, term.Reason, phase = exitCode, "Error", corev1.PodFailed
			}
		}
		statuses = append(statuses, corev1.ContainerStatus{Name: ctr.Name, Image: ctr.Image, State: corev1.ContainerState{Terminated: term}})
	}
	body, err := json.Marshal(map[string]any{"status": corev1.PodStatus{
		Phase: phase, StartTime: &now, ContainerStatuses: statuses,
	}})
	if err != nil {
		return time.Time{}, err
	}
	t0 := time.Now()
	_, err = c.cs.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.MergePatchType, body, metav1.PatchOptions{}, "status")
	c.marks.mark(patched, pod.UID, time.Now())
	if err != nil {
		return t0, fmt.Errorf("end pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return t0, nil
}

// job returns a Job of one Pod.
func job(ns, name string) *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: batchv1.JobSpec{
			BackoffLimit: ptr.To[int32](0),
			Template:     podTemplate(nil),
		},
	}
}

// startKCM starts kube-controller-manager with the job and cronjob controllers and
// extra flags, and waits until its Job controller creates Pods.
func (c *cluster) startKCM(ctx context.Context, obs *observer, name string, extra ...string) (*controlplane.Process, error) {
	logPath := filepath.Join(c.tmp, "kcm-"+name+".log")
	k, err := controlplane.Start(controlplane.Command{
		Name: "kube-controller-manager", AssetsDir: c.env.AssetsDir, LogPath: logPath,
		Args: append([]string{
			"--kubeconfig=" + c.env.KubeconfigPath,
			"--controllers=job-controller,cronjob-controller",
			"--leader-elect=false",
			"--secure-port=0",
			"--use-service-account-credentials=false",
		}, extra...),
	})
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*controlplane.Process, error) {
		_ = k.Stop(kcmGrace)
		return nil, err
	}

	// Ready when a probe Job gets its Pod.
	ns := "kcm-probe-" + name
	if err := c.namespace(ctx, ns); err != nil {
		return fail(err)
	}
	pods := obs.watch(ns)
	if _, err := c.cs.BatchV1().Jobs(ns).Create(ctx, job(ns, "probe"), metav1.CreateOptions{}); err != nil {
		return fail(err)
	}
	select {
	case <-pods:
		return k, nil
	case <-k.Done():
		return nil, k.Err()
	case <-time.After(90 * time.Second):
		return fail(fmt.Errorf("kube-controller-manager %s: probe Job got no Pod in 90s (log: %s)", name, logPath))
	case <-ctx.Done():
		return fail(ctx.Err())
	}
}

// kcmGrace is how long kube-controller-manager may take to stop before SIGKILL.
const kcmGrace = 10 * time.Second
