package chartcheck

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// object is one rendered manifest, decoded into its typed form.
type object struct {
	Kind, Name string
	Source     string // the template that rendered it
	Value      any    // *appsv1.Deployment, *ScaledObject, ...
}

// kinds maps apiVersion/kind to a constructor of the strict target type.
// A kind the chart renders but this table lacks is an error: add it here
// with the API type it must decode into.
var kinds = map[string]func() any{
	"v1/ConfigMap":                            func() any { return &corev1.ConfigMap{} },
	"v1/Service":                              func() any { return &corev1.Service{} },
	"v1/ServiceAccount":                       func() any { return &corev1.ServiceAccount{} },
	"apps/v1/Deployment":                      func() any { return &appsv1.Deployment{} },
	"batch/v1/Job":                            func() any { return &batchv1.Job{} },
	"policy/v1/PodDisruptionBudget":           func() any { return &policyv1.PodDisruptionBudget{} },
	"autoscaling/v2/HorizontalPodAutoscaler":  func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
	"keda.sh/v1alpha1/ScaledObject":           func() any { return &ScaledObject{} },
	"keda.sh/v1alpha1/TriggerAuthentication":  func() any { return &TriggerAuthentication{} },
	"monitoring.coreos.com/v1/ServiceMonitor": func() any { return &ServiceMonitor{} },
	"monitoring.coreos.com/v1/PrometheusRule": func() any { return &PrometheusRule{} },
}

var (
	docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)
	sourceLine   = regexp.MustCompile(`(?m)^# Source: (\S+)`)
)

// errUnknownKind is returned for a manifest whose kind has no strict type.
var errUnknownKind = errors.New("no strict type for this kind")

// decodeManifests splits helm's output into documents and decodes each
// strictly: duplicate keys, unknown fields and case-mismatched field names
// are errors, as they are for a strict `kubectl apply`.
func decodeManifests(out string) ([]object, error) {
	var objs []object
	for _, doc := range docSeparator.Split(out, -1) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		source := ""
		if m := sourceLine.FindStringSubmatch(doc); m != nil {
			source = m[1]
		}
		obj, err := decodeOne([]byte(doc))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", source, err)
		}
		obj.Source = source
		objs = append(objs, obj)
	}
	return objs, nil
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

func decodeOne(doc []byte) (object, error) {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return object{}, fmt.Errorf("yaml: %w", err)
	}
	var tm metav1.TypeMeta
	if _, err := kjson.UnmarshalStrict(js, &tm, kjson.DisallowDuplicateFields); err != nil {
		return object{}, fmt.Errorf("type meta: %w", err)
	}
	key := tm.APIVersion + "/" + tm.Kind
	newObj, ok := kinds[key]
	if !ok {
		return object{}, fmt.Errorf("%s: %w", key, errUnknownKind)
	}
	v := newObj()
	strict, err := kjson.UnmarshalStrict(js, v)
	if err != nil {
		return object{}, fmt.Errorf("%s: %w", key, err)
	}
	if len(strict) > 0 {
		return object{}, fmt.Errorf("%s: strict decoding: %w", key, errors.Join(strict...))
	}
	var meta struct {
		Metadata metav1.ObjectMeta `json:"metadata"`
	}
	if _, err := kjson.UnmarshalStrict(js, &meta, kjson.DisallowDuplicateFields); err != nil {
		return object{}, fmt.Errorf("%s metadata: %w", key, err)
	}
	if meta.Metadata.Name == "" {
		return object{}, fmt.Errorf("%s without metadata.name", key)
	}
	return object{Kind: tm.Kind, Name: meta.Metadata.Name, Value: v}, nil
}

// only returns the objects of one Go type.
func only[T any](objs []object) []T {
	var out []T
	for _, o := range objs {
		if v, ok := o.Value.(T); ok {
			out = append(out, v)
		}
	}
	return out
}
