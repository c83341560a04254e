package bus

import (
	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// metrics are registered with controller-runtime's registry, so that every
// service's /metrics endpoint serves them.
var metrics = struct {
	published *prometheus.CounterVec
	handled   *prometheus.CounterVec
	latency   *prometheus.HistogramVec

	streamMsgs, streamBytes, streamUsage *prometheus.GaugeVec
}{
	published: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "orca_bus_published_total",
		Help: "Events published, by CloudEvent type and outcome (stored, duplicate, error).",
	}, []string{"type", "outcome"}),
	handled: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "orca_bus_messages_total",
		Help: "Messages consumed, by consumer and outcome (acked, retried, deadlettered).",
	}, []string{"consumer", "outcome"}),
	latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "orca_bus_handler_seconds",
		Help:    "Time a handler took for one message, by consumer.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	}, []string{"consumer"}),
	streamMsgs: prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "orca_bus_stream_messages",
		Help: "Messages in the stream, as last seen by a consumer's check.",
	}, []string{"stream"}),
	streamBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "orca_bus_stream_bytes",
		Help: "Bytes in the stream, as last seen by a consumer's check.",
	}, []string{"stream"}),
	streamUsage: prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "orca_bus_stream_usage_ratio",
		Help: "How full the stream is: the larger of messages/MaxMsgs and bytes/MaxBytes. At 1 new events are refused.",
	}, []string{"stream"}),
}

func init() {
	ctrlmetrics.Registry.MustRegister(metrics.published, metrics.handled, metrics.latency,
		metrics.streamMsgs, metrics.streamBytes, metrics.streamUsage)
}
