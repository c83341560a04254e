package app

import (
	"flag"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func parse(t *testing.T, args ...string) (Options, error) {
	t.Helper()
	var o Options
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	o.BindFlags(fs)
	require.NoError(t, fs.Parse(args))
	return o, o.Complete()
}

func TestLeaderElectionDefaultsTakeOverWithinFifteenSeconds(t *testing.T) {
	o, err := parse(t)
	require.NoError(t, err)
	assert.Equal(t, DefaultLeaseDuration, o.LeaseDuration)
	assert.Equal(t, DefaultRenewDeadline, o.RenewDeadline)
	assert.Equal(t, DefaultRetryPeriod, o.RetryPeriod)
	assert.Equal(t, 14400*time.Millisecond, o.WorstTakeover())
	assert.Equal(t, o.WorstTakeover(), (&Options{}).WorstTakeover(), "zero values mean the defaults")

	mo := o.ManagerOptions("scheduler")
	assert.Equal(t, DefaultLeaseDuration, *mo.LeaseDuration)
	assert.Equal(t, DefaultRenewDeadline, *mo.RenewDeadline)
	assert.Equal(t, DefaultRetryPeriod, *mo.RetryPeriod)
	assert.Equal(t, "orca-scheduler", mo.LeaderElectionID)
}

func TestLeaderElectionFlags(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		worst time.Duration
		err   string
	}{
		{args: []string{"--leader-elect-lease-duration=15s", "--leader-elect-renew-deadline=10s", "--leader-elect-retry-period=2s"}, worst: 23800 * time.Millisecond},
		{args: []string{"--leader-elect-lease-duration=10.9s"}, worst: 14400 * time.Millisecond},
		{args: []string{"--leader-elect-retry-period=6s"}, err: "renew-deadline 7s must be longer than 1.2 times --leader-elect-retry-period 6s"},
		{args: []string{"--leader-elect-lease-duration=8s"}, err: "lease-duration 8s must be longer than --leader-elect-renew-deadline 7s plus --leader-elect-retry-period 1s"},
		{args: []string{"--leader-elect-lease-duration=8.9s", "--leader-elect-renew-deadline=7.5s"}, err: "lease-duration 8s must be longer"},
		{args: []string{"--leader-elect-retry-period=-1s"}, err: "must be positive"},
	} {
		o, err := parse(t, tc.args...)
		if tc.err != "" {
			assert.ErrorContains(t, err, tc.err, "%v", tc.args)
			continue
		}
		require.NoError(t, err, "%v", tc.args)
		assert.Equal(t, tc.worst, o.WorstTakeover(), "%v", tc.args)
	}
}
