// Package metrics defines every Prometheus metric neo-events exports
// (DESIGN §5), registered on an injected prometheus.Registerer. The Helm
// chart's dashboards and alerts use exactly these names; a test compares
// them.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Namespace prefixes every metric name.
const Namespace = "neo_events"

// Outcome label values.
const (
	OutcomeSuccess      = "success"
	OutcomeRetry        = "retry"
	OutcomeFailed       = "failed"
	OutcomeDeadLettered = "dead_lettered"
	OutcomeInvalid      = "invalid"
	OutcomeSkipped      = "skipped"
	OutcomeError        = "error"
)

// Worker holds the worker fleet's metrics.
type Worker struct {
	EventsTotal           *prometheus.CounterVec   // {group,event_type,outcome}
	ActionExecutionsTotal *prometheus.CounterVec   // {group,action,outcome}
	HandlerDuration       *prometheus.HistogramVec // {group,action}
	Inflight              *prometheus.GaugeVec     // {group}
	StreamLag             *prometheus.GaugeVec     // {stream,group}
	StreamPending         *prometheus.GaugeVec     // {stream,group}
	StreamConsumers       *prometheus.GaugeVec     // {stream,group}
	OldestPendingSeconds  *prometheus.GaugeVec     // {stream,group}
	GroupBacklog          *prometheus.GaugeVec     // {group}: lag + pending summed over the group's streams
	DLQLength             *prometheus.GaugeVec     // {group}
	DeadLettersTotal      *prometheus.CounterVec   // {group,reason}
	RetriesTotal          *prometheus.CounterVec   // {group,action}
	EndToEndLatency       *prometheus.HistogramVec // {group}: event created -> action done
	ReclaimedTotal        *prometheus.CounterVec   // {group}
	ActionCircuitOpen     *prometheus.GaugeVec     // {group,action}
	StatusWritesTotal     *prometheus.CounterVec   // {group,outcome}
	StatusQueueLength     *prometheus.GaugeVec     // {group}
	StatusFlushDuration   *prometheus.HistogramVec // {group}: one status write transaction
}

// latencyBuckets span 1 ms to about 65 s.
var latencyBuckets = prometheus.ExponentialBuckets(0.001, 2, 17)

// NewWorker registers the worker metrics on reg.
func NewWorker(reg prometheus.Registerer) *Worker {
	f := promauto.With(reg)
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		return f.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help}, labels)
	}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return f.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, labels)
	}
	return &Worker{
		EventsTotal: counter("worker_events_total",
			"Events finished by this worker, by outcome (success, failed, dead_lettered, invalid).",
			"group", "event_type", "outcome"),
		ActionExecutionsTotal: counter("worker_action_executions_total",
			"Action attempts, by outcome (success, retry, failed, dead_lettered, skipped).",
			"group", "action", "outcome"),
		HandlerDuration: f.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "worker_handler_duration_seconds",
			Help: "Time one handler call took.", Buckets: latencyBuckets,
		}, []string{"group", "action"}),
		Inflight: gauge("worker_inflight", "Events being processed by this worker now.", "group"),
		StreamLag: gauge("stream_lag",
			"Entries in the stream not yet delivered to the group.", "stream", "group"),
		StreamPending: gauge("stream_pending",
			"Entries delivered to the group but not yet acknowledged.", "stream", "group"),
		StreamConsumers: gauge("stream_consumers",
			"Consumers of the group on the stream.", "stream", "group"),
		OldestPendingSeconds: gauge("stream_oldest_pending_seconds",
			"Age of the oldest unacknowledged entry of the group on the stream.", "stream", "group"),
		GroupBacklog: gauge("worker_group_backlog",
			"Lag plus pending summed over every stream of the group: the autoscaling signal.", "group"),
		DLQLength: gauge("dlq_length", "Entries in the group's dead-letter stream.", "group"),
		DeadLettersTotal: counter("worker_dead_letters_total",
			"Entries moved to the dead-letter stream, by reason.", "group", "reason"),
		RetriesTotal: counter("worker_retries_total",
			"Retries scheduled, by action.", "group", "action"),
		EndToEndLatency: f.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "worker_end_to_end_latency_seconds",
			Help: "Time from an event's created_at to the end of its last action.", Buckets: latencyBuckets,
		}, []string{"group"}),
		ReclaimedTotal: counter("worker_reclaimed_total",
			"Entries reclaimed from other consumers with XAUTOCLAIM.", "group"),
		ActionCircuitOpen: gauge("action_circuit_open",
			"1 while the action's circuit breaker is open (action unhealthy).", "group", "action"),
		StatusWritesTotal: counter("worker_status_writes_total",
			"Status write batches to PostgreSQL, by outcome (success, error).", "group", "outcome"),
		StatusQueueLength: gauge("worker_status_queue_length",
			"Status writes waiting for the background writer.", "group"),
		StatusFlushDuration: f.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "worker_status_flush_duration_seconds",
			Help:    "Time one status write transaction took (events, executions); each event's slot waits for it.",
			Buckets: latencyBuckets,
		}, []string{"group"}),
	}
}

// Publisher holds the publishing side's metrics.
type Publisher struct {
	EventsTotal     *prometheus.CounterVec // {scope,outcome}
	PublishDuration prometheus.Histogram
	BatchSize       prometheus.Histogram
	OutboxRelayed   prometheus.Counter
}

// NewPublisher registers the publisher metrics on reg.
func NewPublisher(reg prometheus.Registerer) *Publisher {
	f := promauto.With(reg)
	return &Publisher{
		EventsTotal: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "publisher_events_total",
			Help: "Events published, by scope and outcome (success, error).",
		}, []string{"scope", "outcome"}),
		PublishDuration: f.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "publisher_publish_duration_seconds",
			Help: "Time one Publish call took, commit and XADD included.", Buckets: latencyBuckets,
		}),
		BatchSize: f.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "publisher_batch_events",
			Help:    "Events per group-commit batch.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 14),
		}),
		OutboxRelayed: f.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "outbox_relayed_total",
			Help: "Committed rows the outbox relay put on a stream after their publisher did not.",
		}),
	}
}
