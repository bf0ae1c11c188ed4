package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
)

// nodeSimulator stands in for kubelets: it registers Ready nodes, renews their leases so the
// node lifecycle controller keeps them Ready, and plays the kubelet's part in a Pod's life —
// Running and Ready once scheduled (or Succeeded, for Pods that run to completion), and the final
// delete of a Pod being terminated, without which namespace deletion never completes. No
// container runs; no address it reports is ever dialled.
type nodeSimulator struct {
	client  kubernetes.Interface
	count   int
	version string
	nodes   map[string]bool
	podIPs  atomic.Uint32
	wg      sync.WaitGroup
}

const leaseDuration = 40 // seconds, as the kubelet's default

func newNodeSimulator(client kubernetes.Interface, count int, version string) *nodeSimulator {
	s := &nodeSimulator{client: client, count: count, version: version, nodes: map[string]bool{}}
	for i := 1; i <= count; i++ {
		s.nodes[fmt.Sprintf("localkube-node-%d", i)] = true
	}
	return s
}

func (s *nodeSimulator) nodeNames() []string {
	names := make([]string, 0, s.count)
	for i := 1; i <= s.count; i++ {
		names = append(names, fmt.Sprintf("localkube-node-%d", i))
	}
	return names
}

func (s *nodeSimulator) start(ctx context.Context) error {
	for _, name := range s.nodeNames() {
		if err := s.register(ctx, name); err != nil {
			return fmt.Errorf("register node %s: %w", name, err)
		}
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.heartbeat(ctx)
	}()

	factory := informers.NewSharedInformerFactoryWithOptions(s.client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermNotEqualSelector("spec.nodeName", "").String()
		}))
	pods := factory.Core().V1().Pods().Informer()
	_, err := pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { s.reconcilePod(ctx, obj) },
		UpdateFunc: func(_, obj any) { s.reconcilePod(ctx, obj) },
	})
	if err != nil {
		return err
	}
	factory.Start(ctx.Done())
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		<-ctx.Done()
		factory.Shutdown()
	}()
	if !cache.WaitForCacheSync(ctx.Done(), pods.HasSynced) {
		return fmt.Errorf("pod informer did not sync")
	}
	return nil
}

func (s *nodeSimulator) wait() { s.wg.Wait() }

func (s *nodeSimulator) register(ctx context.Context, name string) error {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: name,
			Labels: map[string]string{
				"kubernetes.io/hostname":     name,
				"kubernetes.io/os":           "linux",
				"kubernetes.io/arch":         "amd64",
				"localkube.tether/simulated": "true",
			},
		},
	}
	created, err := s.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		created, err = s.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	}
	if err != nil {
		return err
	}
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("16"),
		corev1.ResourceMemory: resource.MustParse("64Gi"),
		corev1.ResourcePods:   resource.MustParse("250"),
	}
	now := metav1.Now()
	created.Status = corev1.NodeStatus{
		Capacity:    capacity,
		Allocatable: capacity,
		Phase:       corev1.NodeRunning,
		Conditions: []corev1.NodeCondition{
			{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
				Message: "simulated by localkube", LastHeartbeatTime: now, LastTransitionTime: now},
			{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientMemory",
				LastHeartbeatTime: now, LastTransitionTime: now},
			{Type: corev1.NodeDiskPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasNoDiskPressure",
				LastHeartbeatTime: now, LastTransitionTime: now},
			{Type: corev1.NodePIDPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientPID",
				LastHeartbeatTime: now, LastTransitionTime: now},
		},
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: "127.0.0.1"},
			{Type: corev1.NodeHostName, Address: name},
		},
		NodeInfo: corev1.NodeSystemInfo{
			KubeletVersion:          s.version,
			OperatingSystem:         "linux",
			Architecture:            "amd64",
			ContainerRuntimeVersion: "localkube://simulated",
		},
	}
	if _, err := s.client.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		return err
	}
	return s.renewLease(ctx, name)
}

// heartbeat renews every node's lease, which is what the node lifecycle controller reads.
func (s *nodeSimulator) heartbeat(ctx context.Context) {
	ticker := time.NewTicker(10 * time.Second)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			for _, name := range s.nodeNames() {
				_ = s.renewLease(ctx, name) // the next tick retries
			}
		}
	}
}

func (s *nodeSimulator) renewLease(ctx context.Context, name string) error {
	leases := s.client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	now := metav1.NewMicroTime(time.Now())
	lease, err := leases.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = leases.Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: coordinationv1.LeaseSpec{
				HolderIdentity:       ptr.To(name),
				LeaseDurationSeconds: ptr.To[int32](leaseDuration),
				RenewTime:            &now,
			},
		}, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	lease.Spec.RenewTime = &now
	_, err = leases.Update(ctx, lease, metav1.UpdateOptions{})
	return err
}

func (s *nodeSimulator) reconcilePod(ctx context.Context, obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok || !s.nodes[pod.Spec.NodeName] {
		return
	}
	var err error
	switch {
	case pod.DeletionTimestamp != nil:
		// The kubelet's last word on a terminating Pod: delete it for good.
		err = s.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
			GracePeriodSeconds: ptr.To[int64](0),
			Preconditions:      &metav1.Preconditions{UID: &pod.UID},
		})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			err = nil
		}
	case pod.Status.Phase == "" || pod.Status.Phase == corev1.PodPending:
		err = s.startPod(ctx, pod)
	}
	if err != nil && ctx.Err() == nil {
		fmt.Printf("localkube: node simulator: pod %s/%s: %v\n", pod.Namespace, pod.Name, err)
	}
}

// startPod reports the Pod's containers as started. Pods that restart Always run forever and are
// Ready; the others (Jobs) run to completion at once and succeed.
func (s *nodeSimulator) startPod(ctx context.Context, pod *corev1.Pod) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		current, err := s.client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if current.DeletionTimestamp != nil || (current.Status.Phase != "" && current.Status.Phase != corev1.PodPending) {
			return nil
		}
		now := metav1.Now()
		completes := current.Spec.RestartPolicy == corev1.RestartPolicyNever ||
			current.Spec.RestartPolicy == corev1.RestartPolicyOnFailure
		n := s.podIPs.Add(1)
		ip := fmt.Sprintf("10.244.%d.%d", (n/250)%250, n%250+1)

		status := &current.Status
		status.HostIP = "127.0.0.1"
		status.HostIPs = []corev1.HostIP{{IP: "127.0.0.1"}}
		status.PodIP = ip
		status.PodIPs = []corev1.PodIP{{IP: ip}}
		status.StartTime = &now
		ready := corev1.ConditionTrue
		readyReason := ""
		if completes {
			status.Phase = corev1.PodSucceeded
			ready = corev1.ConditionFalse
			readyReason = "PodCompleted"
		} else {
			status.Phase = corev1.PodRunning
		}
		setCondition(status, corev1.PodReadyToStartContainers, corev1.ConditionTrue, "", now)
		setCondition(status, corev1.PodInitialized, corev1.ConditionTrue, readyReason, now)
		setCondition(status, corev1.ContainersReady, ready, readyReason, now)
		setCondition(status, corev1.PodReady, ready, readyReason, now)
		status.InitContainerStatuses = nil
		for _, c := range current.Spec.InitContainers {
			status.InitContainerStatuses = append(status.InitContainerStatuses, terminated(current, c, now))
		}
		status.ContainerStatuses = nil
		for _, c := range current.Spec.Containers {
			if completes {
				status.ContainerStatuses = append(status.ContainerStatuses, terminated(current, c, now))
				continue
			}
			status.ContainerStatuses = append(status.ContainerStatuses, corev1.ContainerStatus{
				Name:        c.Name,
				Image:       c.Image,
				ImageID:     "localkube://" + c.Image,
				ContainerID: fmt.Sprintf("localkube://%s/%s", current.UID, c.Name),
				Ready:       true,
				Started:     ptr.To(true),
				State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
			})
		}
		_, err = s.client.CoreV1().Pods(current.Namespace).UpdateStatus(ctx, current, metav1.UpdateOptions{})
		return err
	})
}

func terminated(pod *corev1.Pod, c corev1.Container, now metav1.Time) corev1.ContainerStatus {
	return corev1.ContainerStatus{
		Name:        c.Name,
		Image:       c.Image,
		ImageID:     "localkube://" + c.Image,
		ContainerID: fmt.Sprintf("localkube://%s/%s", pod.UID, c.Name),
		Started:     ptr.To(false),
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: 0, Reason: "Completed", StartedAt: now, FinishedAt: now,
		}},
	}
}

func setCondition(status *corev1.PodStatus, kind corev1.PodConditionType, value corev1.ConditionStatus, reason string, now metav1.Time) {
	for i := range status.Conditions {
		if status.Conditions[i].Type == kind {
			if status.Conditions[i].Status != value {
				status.Conditions[i].LastTransitionTime = now
			}
			status.Conditions[i].Status = value
			status.Conditions[i].Reason = reason
			return
		}
	}
	status.Conditions = append(status.Conditions, corev1.PodCondition{
		Type: kind, Status: value, Reason: reason, LastTransitionTime: now,
	})
}
