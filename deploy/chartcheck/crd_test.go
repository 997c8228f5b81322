package chartcheck

import (
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The CRDs below carry the fields their projects document (KEDA v2
// keda.sh/v1alpha1; Prometheus Operator monitoring.coreos.com/v1), so a
// misspelt or misplaced field fails strict decoding here rather than being
// pruned silently by the API server.

// ScaledObject is keda.sh/v1alpha1 ScaledObject.
type ScaledObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              ScaledObjectSpec `json:"spec"`
}

// ScaledObjectSpec is the documented spec of a ScaledObject.
type ScaledObjectSpec struct {
	ScaleTargetRef        ScaleTarget    `json:"scaleTargetRef"`
	PollingInterval       *int32         `json:"pollingInterval,omitempty"`
	InitialCooldownPeriod *int32         `json:"initialCooldownPeriod,omitempty"`
	CooldownPeriod        *int32         `json:"cooldownPeriod,omitempty"`
	IdleReplicaCount      *int32         `json:"idleReplicaCount,omitempty"`
	MinReplicaCount       *int32         `json:"minReplicaCount,omitempty"`
	MaxReplicaCount       *int32         `json:"maxReplicaCount,omitempty"`
	Advanced              *KEDAAdvanced  `json:"advanced,omitempty"`
	Triggers              []ScaleTrigger `json:"triggers"`
	Fallback              *KEDAFallback  `json:"fallback,omitempty"`
}

// ScaleTarget names the scaled workload.
type ScaleTarget struct {
	APIVersion             string `json:"apiVersion,omitempty"`
	Kind                   string `json:"kind,omitempty"`
	Name                   string `json:"name"`
	EnvSourceContainerName string `json:"envSourceContainerName,omitempty"`
}

// KEDAAdvanced is spec.advanced.
type KEDAAdvanced struct {
	HorizontalPodAutoscalerConfig *HPAConfig       `json:"horizontalPodAutoscalerConfig,omitempty"`
	RestoreToOriginalReplicaCount bool             `json:"restoreToOriginalReplicaCount,omitempty"`
	ScalingModifiers              *ScalingModifier `json:"scalingModifiers,omitempty"`
}

// HPAConfig is spec.advanced.horizontalPodAutoscalerConfig.
type HPAConfig struct {
	Name     string                                         `json:"name,omitempty"`
	Behavior *autoscalingv2.HorizontalPodAutoscalerBehavior `json:"behavior,omitempty"`
}

// ScalingModifier is spec.advanced.scalingModifiers.
type ScalingModifier struct {
	Formula          string `json:"formula,omitempty"`
	Target           string `json:"target,omitempty"`
	ActivationTarget string `json:"activationTarget,omitempty"`
	MetricType       string `json:"metricType,omitempty"`
}

// KEDAFallback is spec.fallback.
type KEDAFallback struct {
	FailureThreshold int32  `json:"failureThreshold"`
	Replicas         int32  `json:"replicas"`
	Behavior         string `json:"behavior,omitempty"`
}

// ScaleTrigger is one entry of spec.triggers. KEDA reads metadata values as
// strings only, so a number there fails decoding into map[string]string.
type ScaleTrigger struct {
	Type              string             `json:"type"`
	Name              string             `json:"name,omitempty"`
	UseCachedMetrics  bool               `json:"useCachedMetrics,omitempty"`
	Metadata          map[string]string  `json:"metadata"`
	AuthenticationRef *AuthenticationRef `json:"authenticationRef,omitempty"`
	MetricType        string             `json:"metricType,omitempty"`
}

// AuthenticationRef points a trigger at a TriggerAuthentication.
type AuthenticationRef struct {
	Name string `json:"name"`
	Kind string `json:"kind,omitempty"`
}

// triggerMetadata lists, per trigger type the chart uses, the metadata keys
// KEDA documents and those it requires.
var triggerMetadata = map[string]struct{ known, required []string }{
	"prometheus": {
		known: []string{"serverAddress", "query", "queryParameters", "threshold", "activationThreshold",
			"namespace", "customHeaders", "ignoreNullValues", "unsafeSsl", "timeout"},
		required: []string{"serverAddress", "query", "threshold"},
	},
	"redis-streams": {
		known: []string{"address", "addressFromEnv", "host", "hostFromEnv", "port", "portFromEnv",
			"username", "usernameFromEnv", "password", "passwordFromEnv", "stream", "consumerGroup",
			"pendingEntriesCount", "streamLength", "lagCount", "activationLagCount", "databaseIndex",
			"enableTLS", "unsafeSsl"},
		required: []string{"address", "stream", "consumerGroup", "lagCount"},
	},
}

// TriggerAuthentication is keda.sh/v1alpha1 TriggerAuthentication.
type TriggerAuthentication struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		SecretTargetRef []struct {
			Parameter string `json:"parameter"`
			Name      string `json:"name"`
			Key       string `json:"key"`
		} `json:"secretTargetRef,omitempty"`
		Env []struct {
			Parameter     string `json:"parameter"`
			Name          string `json:"name"`
			ContainerName string `json:"containerName,omitempty"`
		} `json:"env,omitempty"`
		PodIdentity *struct {
			Provider   string `json:"provider"`
			IdentityID string `json:"identityId,omitempty"`
		} `json:"podIdentity,omitempty"`
	} `json:"spec"`
}

// ServiceMonitor is monitoring.coreos.com/v1 ServiceMonitor.
type ServiceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		JobLabel          string               `json:"jobLabel,omitempty"`
		TargetLabels      []string             `json:"targetLabels,omitempty"`
		PodTargetLabels   []string             `json:"podTargetLabels,omitempty"`
		Endpoints         []MonitorEndpoint    `json:"endpoints"`
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector *struct {
			Any        bool     `json:"any,omitempty"`
			MatchNames []string `json:"matchNames,omitempty"`
		} `json:"namespaceSelector,omitempty"`
		SampleLimit *uint64 `json:"sampleLimit,omitempty"`
	} `json:"spec"`
}

// MonitorEndpoint is one scrape endpoint of a ServiceMonitor.
type MonitorEndpoint struct {
	Port              string              `json:"port,omitempty"`
	TargetPort        *intstr.IntOrString `json:"targetPort,omitempty"`
	Path              string              `json:"path,omitempty"`
	Scheme            string              `json:"scheme,omitempty"`
	Params            map[string][]string `json:"params,omitempty"`
	Interval          string              `json:"interval,omitempty"`
	ScrapeTimeout     string              `json:"scrapeTimeout,omitempty"`
	HonorLabels       bool                `json:"honorLabels,omitempty"`
	HonorTimestamps   *bool               `json:"honorTimestamps,omitempty"`
	FollowRedirects   *bool               `json:"followRedirects,omitempty"`
	EnableHTTP2       *bool               `json:"enableHttp2,omitempty"`
	FilterRunning     *bool               `json:"filterRunning,omitempty"`
	Relabelings       []map[string]any    `json:"relabelings,omitempty"`
	MetricRelabelings []map[string]any    `json:"metricRelabelings,omitempty"`
}

// PrometheusRule is monitoring.coreos.com/v1 PrometheusRule.
type PrometheusRule struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Groups []RuleGroup `json:"groups"`
	} `json:"spec"`
}

// RuleGroup is one group of a PrometheusRule.
type RuleGroup struct {
	Name                    string            `json:"name"`
	Interval                string            `json:"interval,omitempty"`
	QueryOffset             string            `json:"query_offset,omitempty"`
	Limit                   *int              `json:"limit,omitempty"`
	Labels                  map[string]string `json:"labels,omitempty"`
	PartialResponseStrategy string            `json:"partial_response_strategy,omitempty"`
	Rules                   []Rule            `json:"rules"`
}

// Rule is an alerting or recording rule.
type Rule struct {
	Record        string             `json:"record,omitempty"`
	Alert         string             `json:"alert,omitempty"`
	Expr          intstr.IntOrString `json:"expr"`
	For           string             `json:"for,omitempty"`
	KeepFiringFor string             `json:"keep_firing_for,omitempty"`
	Labels        map[string]string  `json:"labels,omitempty"`
	Annotations   map[string]string  `json:"annotations,omitempty"`
}
