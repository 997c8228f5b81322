package chartcheck

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"

	"github.com/neo-events/neo-events/internal/config"
	"github.com/neo-events/neo-events/internal/streams"
)

const configPath = "/etc/neo-events/worker.yaml"

// rendered is one value set's manifests, decoded.
type rendered struct {
	set  valueSet
	objs []object
}

func renderAll(t *testing.T) []rendered {
	t.Helper()
	var all []rendered
	for _, v := range valueSets(t) {
		out, err := render(t, v)
		require.NoError(t, err, v.name)
		objs, err := decodeManifests(out)
		require.NoError(t, err, v.name)
		all = append(all, rendered{set: v, objs: objs})
	}
	return all
}

func (r rendered) deployment(t *testing.T) *appsv1.Deployment {
	t.Helper()
	ds := only[*appsv1.Deployment](r.objs)
	require.Len(t, ds, 1, "one Deployment per release (one consumer group)")
	return ds[0]
}

// workerConfig returns the worker.yaml of the ConfigMap the Deployment mounts.
func (r rendered) workerConfig(t *testing.T) string {
	t.Helper()
	name := mountedConfigMap(t, r.deployment(t).Spec.Template.Spec)
	for _, cm := range only[*corev1.ConfigMap](r.objs) {
		if cm.Name == name {
			body, ok := cm.Data["worker.yaml"]
			require.True(t, ok, "ConfigMap %s has no worker.yaml", name)
			return body
		}
	}
	t.Fatalf("ConfigMap %s mounted by the Deployment is not rendered", name)
	return ""
}

func mountedConfigMap(t *testing.T, spec corev1.PodSpec) string {
	t.Helper()
	for _, c := range spec.Containers {
		for _, m := range c.VolumeMounts {
			if m.MountPath != filepath.Dir(configPath) {
				continue
			}
			for _, v := range spec.Volumes {
				if v.Name == m.Name && v.ConfigMap != nil {
					return v.ConfigMap.Name
				}
			}
		}
	}
	t.Fatalf("no ConfigMap mounted at %s", filepath.Dir(configPath))
	return ""
}

// loadConfig loads the rendered worker.yaml with the env the pod gets, the
// way the worker does: unknown keys and invalid values fail here.
func loadConfig(t *testing.T, body string) config.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "worker.yaml")
	require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
	t.Setenv("NEO_EVENTS_REDIS_URL", "redis://redis.test:6379/0")
	t.Setenv("NEO_EVENTS_POSTGRES_URL", "postgres://neo@pg.test:5432/neo?sslmode=require")
	t.Setenv("NEO_EVENTS_WORKER_CONSUMER", "orders-neo-events-worker-6d9f-abcde")
	c, err := config.Load(path, nil)
	require.NoError(t, err, "the worker would refuse this config file:\n%s", body)
	return c
}

func TestRenderedConfigLoads(t *testing.T) {
	for _, r := range renderAll(t) {
		t.Run(r.set.name, func(t *testing.T) {
			body := r.workerConfig(t)
			c := loadConfig(t, body)
			require.Equal(t, "orders-neo-events-worker-6d9f-abcde", c.Worker.Consumer, "worker.consumer must come from the pod name")
			require.Equal(t, r.deployment(t).Labels["neo-events.io/group"], c.Worker.Group)

			var raw map[string]any
			require.NoError(t, yaml.Unmarshal([]byte(body), &raw))
			for section, v := range raw {
				keys, _ := v.(map[string]any)
				require.NotContains(t, keys, "url", "%s.url is in the ConfigMap: URLs carry passwords and come from Secrets", section)
			}
			require.NotContains(t, raw["worker"], "consumer", "worker.consumer must come from the pod name")

			grace := r.deployment(t).Spec.Template.Spec.TerminationGracePeriodSeconds
			require.NotNil(t, grace)
			require.Greater(t, time.Duration(*grace)*time.Second, c.Worker.ShutdownTimeout,
				"terminationGracePeriodSeconds must be longer than worker.shutdown_timeout")
		})
	}
}

func TestDeploymentContract(t *testing.T) {
	for _, r := range renderAll(t) {
		t.Run(r.set.name, func(t *testing.T) {
			d := r.deployment(t)
			c := loadConfig(t, r.workerConfig(t))
			spec := d.Spec.Template.Spec
			require.Len(t, spec.Containers, 1)
			w := spec.Containers[0]
			require.Equal(t, []string{"--config", configPath}, w.Args)
			require.Empty(t, w.Command, "the image's entrypoint is the worker")

			port := httpPort(t, c.HTTP.Addr)
			require.Len(t, w.Ports, 1)
			require.Equal(t, "http", w.Ports[0].Name)
			require.Equal(t, port, w.Ports[0].ContainerPort)
			requireProbe(t, w.LivenessProbe, "/healthz")
			requireProbe(t, w.ReadinessProbe, "/readyz")
			requireProbe(t, w.StartupProbe, "/healthz")

			requireEnv(t, w.Env, len(c.Redis.ClusterAddrs) == 0)
			requireRestricted(t, spec, w)
			require.NotNil(t, spec.Affinity)
			require.NotNil(t, spec.Affinity.PodAntiAffinity)
			require.NotNil(t, spec.AutomountServiceAccountToken)
			require.False(t, *spec.AutomountServiceAccountToken, "the worker never calls the Kubernetes API")

			_, autoscaled := autoscaler(r.objs)
			if autoscaled {
				require.Nil(t, d.Spec.Replicas, "an autoscaled Deployment must not set replicas (helm upgrade would reset the scale)")
			} else {
				require.NotNil(t, d.Spec.Replicas)
			}
		})
	}
}

func httpPort(t *testing.T, addr string) int32 {
	t.Helper()
	i := strings.LastIndex(addr, ":")
	require.GreaterOrEqual(t, i, 0, "http.addr %q has no port", addr)
	p, err := strconv.ParseInt(addr[i+1:], 10, 32)
	require.NoError(t, err)
	return int32(p)
}

func requireProbe(t *testing.T, p *corev1.Probe, path string) {
	t.Helper()
	require.NotNil(t, p)
	require.NotNil(t, p.HTTPGet)
	require.Equal(t, path, p.HTTPGet.Path)
	require.Equal(t, "http", p.HTTPGet.Port.String())
}

func requireEnv(t *testing.T, env []corev1.EnvVar, needRedis bool) {
	t.Helper()
	byName := map[string]corev1.EnvVar{}
	for _, e := range env {
		require.NotContains(t, e.Value, "://", "env %s holds a URL inline: use a Secret", e.Name)
		byName[e.Name] = e
	}
	consumer := byName["NEO_EVENTS_WORKER_CONSUMER"]
	require.NotNil(t, consumer.ValueFrom)
	require.NotNil(t, consumer.ValueFrom.FieldRef)
	require.Equal(t, "metadata.name", consumer.ValueFrom.FieldRef.FieldPath)
	names := []string{"NEO_EVENTS_POSTGRES_URL"}
	if needRedis {
		names = append(names, "NEO_EVENTS_REDIS_URL")
	}
	for _, n := range names {
		e, ok := byName[n]
		require.True(t, ok, "%s missing", n)
		require.NotNil(t, e.ValueFrom, "%s must come from a Secret", n)
		require.NotNil(t, e.ValueFrom.SecretKeyRef, "%s must come from a Secret", n)
	}
}

func requireRestricted(t *testing.T, spec corev1.PodSpec, c corev1.Container) {
	t.Helper()
	require.NotNil(t, spec.SecurityContext)
	require.True(t, *spec.SecurityContext.RunAsNonRoot)
	require.NotNil(t, spec.SecurityContext.SeccompProfile)
	sc := c.SecurityContext
	require.NotNil(t, sc)
	require.True(t, *sc.RunAsNonRoot)
	require.True(t, *sc.ReadOnlyRootFilesystem)
	require.False(t, *sc.AllowPrivilegeEscalation)
	require.False(t, sc.Privileged != nil && *sc.Privileged)
	require.NotNil(t, sc.Capabilities)
	require.Equal(t, []corev1.Capability{"ALL"}, sc.Capabilities.Drop)
	require.Empty(t, sc.Capabilities.Add)
}

// autoscaler reports which autoscaler the release renders, if any.
func autoscaler(objs []object) (kind string, ok bool) {
	if len(only[*ScaledObject](objs)) > 0 {
		return "ScaledObject", true
	}
	if len(only[*autoscalingv2.HorizontalPodAutoscaler](objs)) > 0 {
		return "HorizontalPodAutoscaler", true
	}
	return "", false
}

func TestDefaultsAreSafe(t *testing.T) {
	out, err := render(t, valueSet{name: "default"})
	require.NoError(t, err)
	objs, err := decodeManifests(out)
	require.NoError(t, err)
	r := rendered{set: valueSet{name: "default"}, objs: objs}
	d := r.deployment(t)

	pdbs := only[*policyv1.PodDisruptionBudget](objs)
	require.Len(t, pdbs, 1)
	require.Equal(t, d.Spec.Selector.MatchLabels, pdbs[0].Spec.Selector.MatchLabels)
	require.NotEmpty(t, d.Spec.Template.Spec.TopologySpreadConstraints)

	svcs := only[*corev1.Service](objs)
	require.Len(t, svcs, 1)
	require.Equal(t, d.Spec.Selector.MatchLabels, svcs[0].Spec.Selector)
	require.Equal(t, "http", svcs[0].Spec.Ports[0].TargetPort.String())

	// CRD objects stay off by default: installing them without the CRDs fails.
	for _, o := range objs {
		require.NotContains(t, []string{"ScaledObject", "ServiceMonitor", "PrometheusRule", "TriggerAuthentication"}, o.Kind)
	}
}

func TestMigrationHook(t *testing.T) {
	for _, r := range renderAll(t) {
		jobs := only[*batchv1.Job](r.objs)
		if len(jobs) == 0 {
			continue
		}
		t.Run(r.set.name, func(t *testing.T) {
			require.Len(t, jobs, 1)
			j := jobs[0]
			require.Equal(t, "pre-install,pre-upgrade", j.Annotations["helm.sh/hook"])
			c := j.Spec.Template.Spec.Containers[0]
			require.Equal(t, []string{"/usr/local/bin/eventsctl"}, c.Command)
			require.Equal(t, []string{"--config", configPath, "migrate"}, c.Args)
			require.Equal(t, corev1.RestartPolicyNever, j.Spec.Template.Spec.RestartPolicy)
			requireEnv(t, c.Env, true)
			requireRestricted(t, j.Spec.Template.Spec, c)

			// The hook runs before the release's objects exist: its ConfigMap
			// must be a hook too, created first, with the worker's config.
			name := mountedConfigMap(t, j.Spec.Template.Spec)
			var cm *corev1.ConfigMap
			for _, m := range only[*corev1.ConfigMap](r.objs) {
				if m.Name == name {
					cm = m
				}
			}
			require.NotNil(t, cm, "hook ConfigMap %s not rendered", name)
			require.Equal(t, j.Annotations["helm.sh/hook"], cm.Annotations["helm.sh/hook"])
			cmWeight, err := strconv.Atoi(cm.Annotations["helm.sh/hook-weight"])
			require.NoError(t, err)
			jobWeight, err := strconv.Atoi(j.Annotations["helm.sh/hook-weight"])
			require.NoError(t, err)
			require.Less(t, cmWeight, jobWeight)
			require.Equal(t, r.workerConfig(t), cm.Data["worker.yaml"])
			require.Empty(t, j.Spec.Template.Spec.ServiceAccountName, "the chart's ServiceAccount does not exist yet at pre-install")
		})
	}
}

func TestAutoscaling(t *testing.T) {
	for _, r := range renderAll(t) {
		t.Run(r.set.name, func(t *testing.T) {
			d := r.deployment(t)
			c := loadConfig(t, r.workerConfig(t))
			sos := only[*ScaledObject](r.objs)
			hpas := only[*autoscalingv2.HorizontalPodAutoscaler](r.objs)
			require.False(t, len(sos) > 0 && len(hpas) > 0, "KEDA owns an HPA of its own: never render both")
			for _, h := range hpas {
				require.Equal(t, d.Name, h.Spec.ScaleTargetRef.Name)
				require.Equal(t, "Deployment", h.Spec.ScaleTargetRef.Kind)
			}
			auths := map[string]bool{}
			for _, a := range only[*TriggerAuthentication](r.objs) {
				auths[a.Name] = true
			}
			for _, so := range sos {
				require.Equal(t, d.Name, so.Spec.ScaleTargetRef.Name)
				require.NotEmpty(t, so.Spec.Triggers)
				for _, tr := range so.Spec.Triggers {
					requireTrigger(t, tr, c)
					if tr.AuthenticationRef != nil {
						require.True(t, auths[tr.AuthenticationRef.Name], "TriggerAuthentication %s not rendered", tr.AuthenticationRef.Name)
					}
				}
				if so.Spec.IdleReplicaCount != nil {
					require.Less(t, *so.Spec.IdleReplicaCount, *so.Spec.MinReplicaCount)
				}
			}
		})
	}
}

func requireTrigger(t *testing.T, tr ScaleTrigger, c config.Config) {
	t.Helper()
	doc, ok := triggerMetadata[tr.Type]
	require.True(t, ok, "trigger type %q is not one the chart documents", tr.Type)
	for k := range tr.Metadata {
		require.Contains(t, doc.known, k, "%s trigger: metadata %q is not a documented KEDA field", tr.Type, k)
	}
	for _, k := range doc.required {
		require.NotEmpty(t, tr.Metadata[k], "%s trigger: metadata %q is required", tr.Type, k)
	}
	require.Contains(t, []string{"AverageValue", "Value"}, tr.MetricType)
	if tr.Type != "redis-streams" {
		return
	}
	require.Equal(t, c.Worker.Group, tr.Metadata["consumerGroup"])
	require.Equal(t, "0", tr.Metadata["activationLagCount"], "a single entry must wake a fleet scaled to zero")
	p, err := streams.Parse(tr.Metadata["stream"])
	require.NoError(t, err)
	require.Equal(t, c.Streams.Prefix, p.Prefix)
	require.Less(t, p.Partition, c.Streams.Partitions)
	subscribed := slices.ContainsFunc(c.Worker.Subscriptions, func(s string) bool {
		sub, err := streams.ParseSubscription(s)
		return err == nil && sub.Matches(c.Streams.Prefix, tr.Metadata["stream"])
	})
	require.True(t, subscribed, "stream %s is not one worker.subscriptions %v reads", tr.Metadata["stream"], c.Worker.Subscriptions)
}

func TestServiceMonitorScrapesTheMetricsPort(t *testing.T) {
	for _, r := range renderAll(t) {
		sms := only[*ServiceMonitor](r.objs)
		if len(sms) == 0 {
			continue
		}
		t.Run(r.set.name, func(t *testing.T) {
			svc := only[*corev1.Service](r.objs)[0]
			for _, sm := range sms {
				require.Equal(t, svc.Labels["app.kubernetes.io/instance"], sm.Spec.Selector.MatchLabels["app.kubernetes.io/instance"])
				for k, v := range sm.Spec.Selector.MatchLabels {
					require.Equal(t, v, svc.Labels[k], "ServiceMonitor selects label %s the Service lacks", k)
				}
				require.Len(t, sm.Spec.Endpoints, 1)
				require.Equal(t, svc.Spec.Ports[0].Name, sm.Spec.Endpoints[0].Port)
				require.Equal(t, "/metrics", sm.Spec.Endpoints[0].Path)
			}
		})
	}
}
