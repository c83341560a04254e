package app

import (
	"flag"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestKubeAPILimits(t *testing.T) {
	tests := []struct {
		args  []string
		qps   float32
		burst int
	}{
		{nil, -1, -1},
		{[]string{"--kube-api-qps=0"}, -1, -1},
		{[]string{"--kube-api-qps=50"}, 50, 100},
		{[]string{"--kube-api-qps=50", "--kube-api-burst=60"}, 50, 60},
		{[]string{"--kube-api-qps=0.2"}, 0.2, 1},
	}
	for _, tt := range tests {
		var o Options
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		o.BindFlags(fs)
		require.NoError(t, fs.Parse(tt.args))
		qps, burst := o.KubeAPILimits()
		assert.Equal(t, tt.qps, qps, "%v", tt.args)
		assert.Equal(t, tt.burst, burst, "%v", tt.args)
	}
}
