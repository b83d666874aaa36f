package deploy

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/ledgermq/ledgermq/internal/proc"
)

// manifests is deploy/k8s/ledgermq.yaml decoded strictly into the
// Kubernetes API's own Go types: an unknown or misspelt field, a wrong
// type or a wrong apiVersion for a kind fails.
type manifests struct {
	sts      *appsv1.StatefulSet
	services map[string]*corev1.Service
	pdb      *policyv1.PodDisruptionBudget
	netpol   *networkingv1.NetworkPolicy
}

func loadManifests(t *testing.T, path string) manifests {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := manifests{services: map[string]*corev1.Service{}}
	for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(raw), -1) {
		var head struct{ APIVersion, Kind string }
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		strict := func(into any) {
			t.Helper()
			if err := yaml.UnmarshalStrict([]byte(doc), into); err != nil {
				t.Fatalf("document %d (%s): %v", i, head.Kind, err)
			}
		}
		switch kv := head.APIVersion + " " + head.Kind; kv {
		case "apps/v1 StatefulSet":
			m.sts = &appsv1.StatefulSet{}
			strict(m.sts)
		case "v1 Service":
			s := &corev1.Service{}
			strict(s)
			m.services[s.Name] = s
		case "policy/v1 PodDisruptionBudget":
			m.pdb = &policyv1.PodDisruptionBudget{}
			strict(m.pdb)
		case "networking.k8s.io/v1 NetworkPolicy":
			m.netpol = &networkingv1.NetworkPolicy{}
			strict(m.netpol)
		default:
			t.Fatalf("document %d: unexpected %q", i, kv)
		}
	}
	if m.sts == nil || m.pdb == nil || m.netpol == nil || len(m.services) != 2 {
		t.Fatalf("want a StatefulSet, two Services, a PodDisruptionBudget and a NetworkPolicy; got %+v", m)
	}
	return m
}

// brokerFlags returns the flags the broker binary accepts, from its usage.
func brokerFlags(t *testing.T) map[string]bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bin, err := proc.Build(ctx, t.TempDir(), "github.com/ledgermq/ledgermq/cmd/broker")
	if err != nil {
		t.Fatal(err)
	}
	var usage bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "-h")
	cmd.Stdout, cmd.Stderr = &usage, &usage
	cmd.Run() // -h exits 0 after printing; the output is what counts
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+-([a-z0-9-]+)`).FindAllStringSubmatch(usage.String(), -1) {
		flags[m[1]] = true
	}
	if !flags["peers"] || !flags["raft-listen"] {
		t.Fatalf("could not read the broker's flags from its usage:\n%s", usage.String())
	}
	return flags
}

// expand replaces $(VAR) references as the kubelet does, with the values
// of the variables defined before (fieldRef values supplied by the test).
func expand(s string, vars map[string]string) string {
	return regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`).ReplaceAllStringFunc(s, func(ref string) string {
		if v, ok := vars[ref[2:len(ref)-1]]; ok {
			return v
		}
		return ref
	})
}

// TestKubernetesManifest: the StatefulSet, its headless Service with
// pod-DNS peer list, the client Service, PDB and NetworkPolicy decode
// strictly as Kubernetes objects and fit together: selectors match the pod
// labels, every LEDGERMQ_* variable is a broker flag, the peer list names
// each pod of the StatefulSet by its DNS name under the headless Service on
// the Raft port the container declares, probes and Services point at
// declared ports, a majority stays up under the PDB, and the Raft port is
// open to the group's own pods only.
func TestKubernetesManifest(t *testing.T) {
	m := loadManifests(t, "k8s/ledgermq.yaml")
	sts := m.sts
	pod := sts.Spec.Template
	labels := pod.Labels
	matches := func(sel map[string]string) bool {
		for k, v := range sel {
			if labels[k] != v {
				return false
			}
		}
		return len(sel) > 0
	}
	if sts.Spec.Selector == nil || !matches(sts.Spec.Selector.MatchLabels) {
		t.Fatalf("StatefulSet selector %v does not match its pods %v", sts.Spec.Selector, labels)
	}
	replicas := int(*sts.Spec.Replicas)
	if replicas != 3 && replicas != 5 {
		t.Fatalf("replicas %d: a group is 3 or 5 nodes", replicas)
	}
	if sts.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
		t.Error("podManagementPolicy must be Parallel: an ordered start waits for a ready pod, which needs a leader, which needs the others")
	}
	headless := m.services[sts.Spec.ServiceName]
	if headless == nil || headless.Spec.ClusterIP != corev1.ClusterIPNone || !headless.Spec.PublishNotReadyAddresses {
		t.Fatalf("serviceName %q must be a headless Service publishing not-ready pods", sts.Spec.ServiceName)
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	for _, name := range []string{"api", "raft"} {
		if ports[name] == 0 {
			t.Fatalf("the container declares no %s port", name)
		}
	}
	portOK := func(p intstr.IntOrString) bool {
		if p.Type == intstr.String {
			return ports[p.StrVal] != 0
		}
		for _, v := range ports {
			if v == p.IntVal {
				return true
			}
		}
		return false
	}
	for name, s := range m.services {
		if !matches(s.Spec.Selector) {
			t.Errorf("Service %s selects %v, not the pods", name, s.Spec.Selector)
		}
		for _, p := range s.Spec.Ports {
			if !portOK(p.TargetPort) {
				t.Errorf("Service %s port %s targets %v, which the container does not declare", name, p.Name, p.TargetPort.String())
			}
		}
	}
	for what, pr := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if pr == nil || pr.HTTPGet == nil || !portOK(pr.HTTPGet.Port) {
			t.Errorf("%s probe must be an HTTP GET on a declared port", what)
		}
	}
	if c.ReadinessProbe != nil && c.ReadinessProbe.HTTPGet != nil && c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("readiness probe on %s, want /readyz", c.ReadinessProbe.HTTPGet.Path)
	}

	// The environment as the kubelet builds it for pod ledgermq-1 in
	// namespace mq: every LEDGERMQ_* is a flag, and the values fit.
	flags := brokerFlags(t)
	podName := sts.Name + "-1"
	vars := map[string]string{}
	for _, e := range c.Env {
		v := e.Value
		if e.ValueFrom != nil {
			if e.ValueFrom.FieldRef == nil {
				t.Fatalf("env %s: only fieldRef sources are expected", e.Name)
			}
			v = map[string]string{"metadata.name": podName, "metadata.namespace": "mq", "status.podIP": "10.1.2.3"}[e.ValueFrom.FieldRef.FieldPath]
			if v == "" {
				t.Fatalf("env %s: unexpected fieldRef %s", e.Name, e.ValueFrom.FieldRef.FieldPath)
			}
		}
		vars[e.Name] = expand(v, vars)
		if name, ok := strings.CutPrefix(e.Name, "LEDGERMQ_"); ok {
			flag := strings.ToLower(strings.ReplaceAll(name, "_", "-"))
			if !flags[flag] {
				t.Errorf("env %s is no broker flag (--%s): the broker would ignore it", e.Name, flag)
			}
		}
	}
	if vars["LEDGERMQ_ID"] != podName {
		t.Errorf("node id %q, want the pod name %q", vars["LEDGERMQ_ID"], podName)
	}
	var want []string
	for i := range replicas {
		id := fmt.Sprintf("%s-%d", sts.Name, i)
		want = append(want, fmt.Sprintf("%s=%s.%s.mq.svc:%d", id, id, headless.Name, ports["raft"]))
	}
	if got := vars["LEDGERMQ_PEERS"]; got != strings.Join(want, ",") {
		t.Errorf("peers\n %s\nwant every pod by its DNS name:\n %s", got, strings.Join(want, ","))
	}
	if got, w := vars["LEDGERMQ_RAFT_LISTEN"], fmt.Sprintf("10.1.2.3:%d", ports["raft"]); got != w {
		t.Errorf("raft listen %q, want the pod's own address %q", got, w)
	}
	if got, w := vars["LEDGERMQ_ADVERTISE_API"], fmt.Sprintf("%s.%s.mq.svc:%d", podName, headless.Name, ports["api"]); got != w {
		t.Errorf("advertised API %q, want the pod's DNS name %q", got, w)
	}
	if !strings.HasSuffix(vars["LEDGERMQ_LISTEN"], fmt.Sprintf(":%d", ports["api"])) {
		t.Errorf("API listen %q is not on the declared api port %d", vars["LEDGERMQ_LISTEN"], ports["api"])
	}
	var dataMounted bool
	for _, vm := range c.VolumeMounts {
		dataMounted = dataMounted || (vm.MountPath == vars["LEDGERMQ_DATA_DIR"] && len(sts.Spec.VolumeClaimTemplates) == 1 &&
			sts.Spec.VolumeClaimTemplates[0].Name == vm.Name)
	}
	if !dataMounted {
		t.Error("the data directory is not the volume claim template's mount")
	}
	sc := pod.Spec.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.FSGroup == nil {
		t.Error("pods must run as non-root with an fsGroup owning the data volume")
	}

	if !matches(m.pdb.Spec.Selector.MatchLabels) || m.pdb.Spec.MaxUnavailable == nil ||
		m.pdb.Spec.MaxUnavailable.IntValue() > (replicas-1)/2 {
		t.Errorf("the PodDisruptionBudget must keep a majority of %d up: %+v", replicas, m.pdb.Spec)
	}
	np := m.netpol.Spec
	if !matches(np.PodSelector.MatchLabels) {
		t.Fatal("the NetworkPolicy does not select the pods")
	}
	for _, rule := range np.Ingress {
		for _, p := range rule.Ports {
			if p.Port != nil && p.Port.IntValue() == int(ports["raft"]) {
				if len(rule.From) == 0 {
					t.Error("the Raft port is open to everyone")
				}
				for _, f := range rule.From {
					if f.PodSelector == nil || !matches(f.PodSelector.MatchLabels) || f.NamespaceSelector != nil || f.IPBlock != nil {
						t.Errorf("the Raft port admits more than the group's pods: %+v", f)
					}
				}
			}
		}
	}
}
