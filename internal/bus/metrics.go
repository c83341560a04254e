package bus

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// metrics are registered with controller-runtime's registry, so that every
// service's /metrics endpoint serves them.
var metrics = struct {
	published   *prometheus.CounterVec
	handled     *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	age         *prometheus.HistogramVec
	stream      *streamCollector
	streamUsage *prometheus.GaugeVec
}{
	published: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "orca_bus_published_total",
		Help: "Events published, by CloudEvent type and outcome (stored, duplicate, error).",
	}, []string{"type", "outcome"}),
	handled: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "orca_bus_messages_total",
		Help: "Messages consumed, by consumer and outcome (acked, retried, deferred, deadlettered).",
	}, []string{"consumer", "outcome"}),
	latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "orca_bus_handler_seconds",
		Help:    "Time a handler took for one message, by consumer.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	}, []string{"consumer"}),
	age: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "orca_bus_event_age_seconds",
		Help: "Time from the stream storing an event to a consumer acknowledging it, its handler done, by consumer: " +
			"for orca-dispatcher, an event to its Pods created (a hop, less the publish).",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
	}, []string{"consumer"}),
	stream: &streamCollector{consumers: map[*Consumer]struct{}{}},
	streamUsage: prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "orca_bus_stream_usage_ratio",
		Help: "How full the stream is: the larger of messages/MaxMsgs and bytes/MaxBytes. At 1 new events are refused.",
	}, []string{"stream"}),
}

func init() {
	// Series that count trouble exist at 0 from the start, so that alerts and
	// rate() see them before the first error.
	for _, t := range []string{TypeIgnited, TypeTaskSucceeded, TypeTaskFailed} {
		for _, outcome := range []string{"stored", "duplicate", "error"} {
			metrics.published.WithLabelValues(t, outcome)
		}
	}
	ctrlmetrics.Registry.MustRegister(metrics.published, metrics.handled, metrics.latency, metrics.age, metrics.stream, metrics.streamUsage)
}

var (
	streamLabels   = []string{"stream"}
	consumerLabels = []string{"stream", "consumer"}
	descStreamMsgs = prometheus.NewDesc("orca_stream_messages",
		"Messages stored in Orca's stream, read from the server at each scrape.", streamLabels, nil)
	descStreamBytes = prometheus.NewDesc("orca_stream_bytes",
		"Bytes stored in Orca's stream, read from the server at each scrape.", streamLabels, nil)
	descStreamMaxMsgs = prometheus.NewDesc("orca_stream_max_messages",
		"The stream's limit on messages; -1 when it has none.", streamLabels, nil)
	descStreamMaxBytes = prometheus.NewDesc("orca_stream_max_bytes",
		"The stream's limit on bytes; -1 when it has none.", streamLabels, nil)
	descPending = prometheus.NewDesc("orca_consumer_pending_messages",
		"Messages of the stream that a durable consumer has not been delivered yet: its lag.", consumerLabels, nil)
	descAckPending = prometheus.NewDesc("orca_consumer_ack_pending_messages",
		"Messages delivered to a durable consumer and not acknowledged yet.", consumerLabels, nil)
)

// streamCollector reads, at each scrape, the usage and limits of the stream and
// the backlog of the durable consumers that this process consumes with.
type streamCollector struct {
	mu        sync.Mutex
	consumers map[*Consumer]struct{}
}

// track adds a consumer to the next scrapes, until it stops.
func (s *streamCollector) track(c *Consumer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.consumers[c] = struct{}{}
}

func (s *streamCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descStreamMsgs, descStreamBytes, descStreamMaxMsgs, descStreamMaxBytes, descPending, descAckPending} {
		ch <- d
	}
}

func (s *streamCollector) Collect(ch chan<- prometheus.Metric) {
	s.mu.Lock()
	var live []*Consumer
	for c := range s.consumers {
		select {
		case <-c.done:
			delete(s.consumers, c)
		default:
			live = append(live, c)
		}
	}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	streams, consumers := map[string]bool{}, map[[2]string]bool{}
	for _, c := range live {
		b, name := c.bus, c.opts.Name
		if !streams[b.stream] {
			if st, err := b.js.Stream(ctx, b.stream); err == nil {
				streams[b.stream] = true
				info := st.CachedInfo()
				gauge(descStreamMsgs, float64(info.State.Msgs), b.stream)
				gauge(descStreamBytes, float64(info.State.Bytes), b.stream)
				gauge(descStreamMaxMsgs, float64(info.Config.MaxMsgs), b.stream)
				gauge(descStreamMaxBytes, float64(info.Config.MaxBytes), b.stream)
			}
		}
		if key := [2]string{b.stream, name}; !consumers[key] {
			if cons, err := b.js.Consumer(ctx, b.stream, name); err == nil {
				consumers[key] = true
				info := cons.CachedInfo()
				gauge(descPending, float64(info.NumPending), b.stream, name)
				gauge(descAckPending, float64(info.NumAckPending), b.stream, name)
			}
		}
	}
}
